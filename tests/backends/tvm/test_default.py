"""`--tvm-default`: TVM's own ONNX frontend and default pipeline, built, run and saved like our models."""

import json

import numpy as np
import pytest

import cnncompile
from cnncompile.backends.tvm.artifact import MANIFEST
from cnncompile.cli import main
from cnncompile.errors import CnnCompileError
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error, tolerance
from cnncompile.frontends.load import load_model
from cnncompile.tools.models import random_inputs
from test_cli import small_model

from cases import CASES

BY_ID = {c.id: c for c in CASES}


def test_cli_tvm_default_artifact_runs_like_ours(tmp_path, capsys):
    source = small_model(tmp_path / "small.onnx")
    out = tmp_path / "default"
    argv = ["compile", str(source), "--input-shape", "data=1x3x8x8", "--target", "llvm", "--tvm-default"]
    assert main(argv + ["-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pipeline"] == "tvm-default" and report["kernels"] is None
    assert json.loads((out / MANIFEST).read_text())["pipeline"] == "tvm-default"
    loaded = cnncompile.load(out)
    graph = cnncompile.load_onnx(str(source), {"data": (1, 3, 8, 8)})
    inputs = random_inputs(graph, seed=4)
    want = cnncompile.run_reference(graph, inputs, dtype=DType.FLOAT64)["out"]
    assert relative_error(loaded.run(inputs)["out"], want) <= tolerance(DType.FLOAT32)


def test_api_tvm_default_on_a_zoo_model_and_several_outputs():
    """A Graph goes out through to_onnx; a single output and a tuple of outputs both come back by name."""
    resnet = load_model("zoo:resnet18", {"input": (1, 3, 32, 32)})
    split, split_inputs = BY_ID["Split-num-outputs"].build(seed=5)
    for graph, inputs in ((resnet, random_inputs(resnet, seed=3)), (split, split_inputs)):
        model = cnncompile.compile(graph, target="llvm", pipeline="O3", tvm_default=True)
        assert model.provenance.pipeline == "tvm-default" and model.kernels is None
        got = model.run(inputs)
        for name, ref in cnncompile.run_reference(graph, inputs, dtype=DType.FLOAT64).items():
            assert relative_error(got[name], ref) <= tolerance(DType.FLOAT32), name
            assert np.isfinite(got[name]).all()
        with pytest.raises(CnnCompileError, match="default path"):
            model.run_node(graph.nodes[0].name, [inputs[v.name] for v in graph.inputs])
