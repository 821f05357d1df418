"""Suite-wide settings.

The pass manager verifies the IR after every pass in every test. Tests marked `gpu` run
only where a CUDA GPU is visible; everywhere else they are skipped, with the reason.
"""

import os
import signal

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


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt here and in the processes this test starts.

    pytest-xdist's workers ignore SIGINT (the controller handles Ctrl-C), and an ignored signal
    stays ignored across exec: a child cnncompile would never see the Ctrl-C a test sends it.
    A Python handler is reset to the default on exec, so the child's Python installs its own."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
