"""ONNX's own conformance cases through `cnncompile.onnx_backend`, judged as onnx's runner judges.

Every case whose model uses only registry ops runs in the float64 reference, the gold
standard that defines what cnncompile computes (float32 compute is a precision choice:
the pytorch-operator cases feed float64 values beyond float32's range); its outputs must
match the stored ones within the case's rtol/atol and carry the declared dtype
(`onnx.backend.test.runner.Runner.assert_similar_outputs`). The cases cnncompile does not
pass are listed, with their reasons, in exclusions.py; each must still fail in the way
its reason says (a strict xfail), so fixing one means deleting its entry.
"""

from __future__ import annotations

import io
import re
import unittest

import pytest
from onnx.backend.test import BackendTest
from onnx.backend.test.runner import Runner

from cnncompile.errors import CnnCompileError
from cnncompile.onnx_backend import CnnCompileBackend
from exclusions import EXCLUSIONS
from onnx_cases import ONNX_OPS, Case, selected_cases

CASES = selected_cases()

# What a case excluded for each kind of reason must still raise.
EXPECTED_FAILURE: dict[str, type[BaseException]] = {
    "unsupported": CnnCompileError,
    "oracle": AssertionError,
    "importer": Exception,
}


def exclusion(name: str) -> str | None:
    reasons = [reason for pattern, reason in EXCLUSIONS.items() if re.fullmatch(pattern, name)]
    assert len(reasons) <= 1, f"{name} matches several exclusions: {reasons}"
    return reasons[0] if reasons else None


def param(case: Case) -> pytest.param:
    reason = exclusion(case.name)
    if reason is None:
        return pytest.param(case, id=case.id)
    kind = reason.split(":", 1)[0]
    return pytest.param(case, id=case.id,
                        marks=pytest.mark.xfail(strict=True, raises=EXPECTED_FAILURE[kind], reason=reason))


@pytest.mark.parametrize("case", [param(c) for c in CASES])
def test_case(case: Case):
    model = case.model()
    data_sets = case.data_sets(model)
    assert data_sets, f"{case.id} has no test_data_set"
    rep = CnnCompileBackend.prepare(model, "CPU", dtype="float64")
    for inputs, expected in data_sets:
        Runner.assert_similar_outputs(expected, list(rep.run(inputs)), rtol=case.rtol, atol=case.atol,
                                      model_dir=case.id)


def test_every_exclusion_names_selected_cases_and_a_known_kind():
    names = [c.name for c in CASES]
    for pattern, reason in EXCLUSIONS.items():
        assert any(re.fullmatch(pattern, n) for n in names), f"exclusion {pattern!r} matches no selected case"
        assert reason.split(":", 1)[0] in EXPECTED_FAILURE, f"{pattern!r}: reason must start with a known kind"


def test_every_registry_onnx_op_has_node_cases():
    covered = {node.op_type for c in CASES if c.kind == "node" for node in c.model().graph.node}
    assert covered == ONNX_OPS, f"registry ops without a node case: {sorted(ONNX_OPS - covered)}"


def test_onnx_backend_test_runner_drives_the_backend():
    """onnx's BackendTest itself runs cases through the backend: the API is the one it expects."""
    names = ("test_relu", "test_conv_with_strides_padding", "test_reshape_negative_dim")
    runner = BackendTest(CnnCompileBackend, __name__)
    for name in names:
        runner.include(rf"^{name}_cpu$")
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(runner.test_suite)
    assert result.wasSuccessful(), result.failures + result.errors
    assert result.testsRun - len(result.skipped) == len(names)
