"""validate --determinism: lenet5 compiles, runs and batches reproducibly; a test-only nondeterminism fails it."""

import numpy as np
import pytest

import cnncompile.compiled as compiled_module
from cnncompile.api import compile as compile_model
from cnncompile.frontends.load import load_model
from cnncompile.tools.determinism import (
    BATCH, CheckKind, artifacts_identical, determinism, rebatched, runs_identical,
)
from cnncompile.tools.inputs import input_specs, random_sets
from cnncompile.tools.validate import ValidateOptions


@pytest.fixture(scope="module")
def lenet():
    graph = load_model("zoo:lenet5")
    return graph, random_sets(input_specs(graph))[0]


def test_lenet5_is_deterministic(lenet):
    graph, inputs = lenet
    result = determinism(graph, ValidateOptions("llvm"), inputs)
    assert [c.kind for c in result.checks] == list(CheckKind)
    assert result.passed and all(c.passed is True for c in result.checks)
    assert "manifest.json" in result.checks[0].detail and "model.so" in result.checks[0].detail


def test_rebatching_binds_the_first_dimension(lenet):
    graph, _ = lenet
    batched = rebatched(graph, BATCH)
    assert [v.type.shape for v in batched.inputs] == [(BATCH, *graph.inputs[0].type.shape[1:])]
    assert batched.outputs[0].type.shape[0] == BATCH


def test_a_run_that_adds_noise_the_second_time_fails(lenet, monkeypatch):
    graph, inputs = lenet
    model = compile_model(graph, "llvm")
    run, calls = model.run, []

    def noisy(arrays):
        calls.append(1)
        outputs = run(arrays)
        return {k: v + np.float32(1e-6) * (len(calls) > 1) for k, v in outputs.items()}

    monkeypatch.setattr(model, "run", noisy)
    check = runs_identical(model, inputs)
    assert check.passed is False and "run 2 differs from run 1 in output" in check.detail


def test_a_manifest_that_records_the_time_fails_and_is_named(lenet, monkeypatch):
    graph, _ = lenet
    stamps = iter(range(100))
    versions = compiled_module.versions
    monkeypatch.setattr(compiled_module, "versions", lambda: {**versions(), "stamp": str(next(stamps))})
    check = artifacts_identical(lambda: compile_model(graph, "llvm"))
    assert check.passed is False and check.detail.startswith("manifest.json differ")
