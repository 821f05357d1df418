"""Suite-wide settings.

The pass manager verifies the IR after every pass in every test. Tests marked `gpu` run
only where a CUDA GPU is visible; everywhere else they are skipped, with the reason.
"""

import os

import pytest

os.environ.setdefault("CNNCOMPILE_VERIFY", "1")


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    from cnncompile.backends.tvm.target import gpu_visible

    if gpu_visible():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU is visible")
    for item in gpu_items:
        item.add_marker(skip)
