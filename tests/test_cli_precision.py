"""--precision and --keep-fp32 on the command line: compile records it, run emulates it, misuse is one line."""

import json

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from cnncompile.cli import main


@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["data", "w"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
         helper.make_node("Relu", ["c"], ["r"], name="relu1"),
         helper.make_node("GlobalAveragePool", ["r"], ["out"], name="pool")],
        "small", [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, None)], [weights])
    path = tmp_path / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_compile_records_the_precision(model, tmp_path, capsys):
    assert main(["compile", model, "--precision", "bf16", "-o", str(tmp_path / "a"), "--json"]) == 0
    assert last_json(capsys)["precision"] == "bf16"
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["precision"] == "bf16"
    assert main(["run", str(tmp_path / "a"), "--random-inputs", "--output", str(tmp_path / "o.npz")]) == 0
    assert np.load(tmp_path / "o.npz")["out"].dtype == np.float32  # the model's outputs stay float32


def test_run_on_the_reference_emulates_the_precision(model, tmp_path, capsys):
    outputs = {}
    for precision in ("fp32", "bf16"):
        path = tmp_path / f"{precision}.npz"
        assert main(["run", model, "--random-inputs", "--precision", precision, "--output", str(path)]) == 0
        outputs[precision] = np.load(path)["out"]
    difference = np.abs(outputs["bf16"] - outputs["fp32"]).max() / np.abs(outputs["fp32"]).max()
    assert 1e-5 < difference < 2e-2  # rounded to bf16's 8 bits, not beyond its policy


@pytest.mark.parametrize("argv,message", [
    (["--keep-fp32", "conv1"], "--keep-fp32 keeps nodes in float32 when the rest is reduced"),
    (["--precision", "bf16", "--keep-fp32", "nonesuch"], "no node called nonesuch"),
])
def test_misuse_is_one_line(model, argv, message, capsys):
    assert main(["run", model, "--random-inputs", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_compiled_artifact_keeps_its_precision(model, tmp_path, capsys):
    assert main(["compile", model, "-o", str(tmp_path / "a")]) == 0
    assert main(["run", str(tmp_path / "a"), "--random-inputs", "--precision", "fp16"]) == 2
    assert "its precision is fixed" in capsys.readouterr().err
