"""The command line: help for every command, one-line errors with exit code 2, real runs."""

import json

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from cnncompile.cli import build_parser, main


def small_model(path):
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["data", "w"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
         helper.make_node("Relu", ["c"], ["out"], name="relu1")],
        "small",
        [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, None)],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: cnncompile " + command in capsys.readouterr().out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_missing_model_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "none.onnx")]) == 2
    assert "does not exist" in one_line_error(capsys)


def test_garbage_file_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(512))
    assert main(["inspect", str(path)]) == 2
    assert "cnncompile: error:" in one_line_error(capsys)


def test_unbound_dynamic_dim_names_the_flag(tmp_path, capsys):
    assert main(["inspect", str(small_model(tmp_path / "m.onnx"))]) == 2
    assert "--input-shape data=" in one_line_error(capsys)


def test_inspect_table_and_json(tmp_path, capsys):
    path = str(small_model(tmp_path / "m.onnx"))
    assert main(["inspect", path, "--input-shape", "data=2x3x8x8"]) == 0
    table = capsys.readouterr().out
    assert "conv1" in table and "2x4x8x8" in table
    assert main(["inspect", path, "--input-shape", "data=2x3x8x8", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [layer["op"] for layer in layers] == ["Conv", "Relu"]
    assert layers[0]["parameters"] == 4 * 3 * 3 * 3
    assert layers[0]["flops"] == 2 * (2 * 4 * 8 * 8) * (3 * 3 * 3)


def test_run_writes_outputs_that_match_numpy(tmp_path, capsys):
    path = str(small_model(tmp_path / "m.onnx"))
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    assert main(["run", path, "--input-shape", "data=1x3x8x8", "--input", f"data={tmp_path / 'x.npy'}",
                 "--output", str(out), "--dtype", "float64"]) == 0
    got = np.load(out)["out"]
    w = numpy_helper.to_array(onnx.load(path).graph.initializer[0]).astype(np.float64)
    padded = np.pad(x[0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    expected = np.maximum(np.einsum("chwij,mcij->mhw", windows, w), 0)
    np.testing.assert_allclose(got[0], expected, rtol=1e-12, atol=1e-12)
    assert not list(tmp_path.glob(".out.npz.*"))


def test_run_with_missing_input_names_it(tmp_path, capsys):
    path = str(small_model(tmp_path / "m.onnx"))
    assert main(["run", path, "--input-shape", "data=1x3x8x8"]) == 2
    assert "missing input(s) 'data'" in one_line_error(capsys)


def test_run_with_wrong_shape_says_what_to_pass(tmp_path, capsys):
    path = str(small_model(tmp_path / "m.onnx"))
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 4, 4), np.float32))
    assert main(["run", path, "--input-shape", "data=1x3x8x8", "--input", f"data={tmp_path / 'x.npy'}"]) == 2
    assert "expects [1, 3, 8, 8]" in one_line_error(capsys)


def test_bad_input_shape_flag(tmp_path, capsys):
    path = str(small_model(tmp_path / "m.onnx"))
    assert main(["inspect", path, "--input-shape", "data=1,3,8,8"]) == 2
    assert "NAME=DxDx" in one_line_error(capsys)


def test_ops_lists_the_registry(capsys):
    assert main(["ops", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "Conv" in listed and listed["Conv"]
