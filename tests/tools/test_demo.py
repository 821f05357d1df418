"""`cnncompile demo` end to end on a smaller zoo ResNet: compiles, validates, reports."""

import pytest

from cnncompile.tools.demo import run_demo


@pytest.mark.slow
def test_demo_compiles_validates_and_times_three_contenders():
    report, passed = run_demo("resnet18", seed=1)
    assert passed
    assert "zoo:resnet18" in report and "-p O3" in report and "end to end vs reference: error" in report
    for contender in ("cnncompile (TVM, O3)", "NumPy reference float32", "onnxruntime"):
        assert contender in report
    assert report.rstrip().endswith("verdict: PASS")
