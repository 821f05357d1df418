"""Malformed models: each is one clear CnnCompileError, and on the CLI exit code 2 and one line.

Never a traceback, a hang or a crash: some of these make onnx's own C++ abort the process
(see cnncompile/frontends/forked.py), which is why they are here.
"""

import os
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import cnncompile
from cnncompile.errors import CnnCompileError, ModelError, ShapeError, UnsupportedError
from cnncompile.frontends.forked import OnnxCrash, run_forked
from malformed_harness import X, assert_one_line_cli_error, conv, make, written


def sequence_input() -> onnx.ModelProto:
    model = make([helper.make_node("Relu", ["x"], ["y"])])
    model.graph.input.append(helper.make_tensor_sequence_value_info("frames", TensorProto.FLOAT, X))
    return model


def cyclic() -> onnx.ModelProto:
    return make([helper.make_node("Add", ["x", "b"], ["a"], name="add"),
                 helper.make_node("Relu", ["a"], ["b"], name="relu"),
                 helper.make_node("Relu", ["a"], ["y"], name="out")])


def unknown_domain() -> onnx.ModelProto:
    return make([helper.make_node("Relu", ["x"], ["r"]),
                 helper.make_node("Warp", ["r"], ["y"], name="warp1", domain="com.example.vision")])


def no_outputs() -> onnx.ModelProto:
    model = make([helper.make_node("Relu", ["x"], ["y"])])
    del model.graph.output[:]
    return model


def wrong_rank_into_conv() -> onnx.ModelProto:
    """onnx's shape inference aborts the process on this one."""
    model = conv()
    del model.graph.input[0].type.tensor_type.shape.dim[2:]
    return model


def huge_constant() -> onnx.ModelProto:
    return make([helper.make_node("ConstantOfShape", ["shape"], ["big"], name="fill"),
                 helper.make_node("Add", ["x", "big"], ["y"])], inputs=[("x", (1, 1))],
                initializers=[("shape", np.array([1 << 20, 1 << 20], np.int64))])


def newlines_in_names() -> onnx.ModelProto:
    return make([helper.make_node("Relu", ["x"], ["y"], name="evil\nname", domain="ex\nample")])


def missing_initializer() -> onnx.ModelProto:
    return make([helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")])


def negative_pool_pad() -> onnx.ModelProto:
    return make([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[0, 0, -2, 0], name="pool1")])


def zero_sized_spatial_dim() -> onnx.ModelProto:
    return make([helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")], inputs=[("x", (1, 3, 0, 8))],
                initializers=[("w", (4, 3, 3, 3))])


def value_produced_twice() -> onnx.ModelProto:
    return make([helper.make_node("Relu", ["x"], ["y"], name="r1"), helper.make_node("Relu", ["x"], ["y"], name="r2")])


MODELS = {
    "cyclic graph": (cyclic, ModelError, "cycle: node 'add' \\(Add\\) -> node 'relu' \\(Relu\\) -> back to node 'add'"),
    "missing initializer": (missing_initializer, ModelError,
                            "node 'conv1' \\(Conv\\) reads 'w'.*add the missing initializer"),
    "negative pad": (lambda: conv(pads=(1, -1, 1, 1)), ShapeError,
                     "node 'conv1' \\(Conv\\).*pads must be non-negative"),
    "negative pool pad": (negative_pool_pad, ShapeError, "node 'pool1'.*non-negative"),
    "zero-sized kernel dim": (lambda: conv(weights=(4, 3, 0, 3)), ShapeError, "node 'conv1' \\(Conv\\).*positive"),
    "zero-sized spatial dim": (zero_sized_spatial_dim, ShapeError,
                               "node 'conv1' \\(Conv\\).*does not fit spatial dim 0 of size 0"),
    "unknown domain": (unknown_domain, UnsupportedError,
                       "Warp \\(com.example.vision, a domain the model never imports\\) x1: 'warp1'"),
    "non-tensor input": (sequence_input, UnsupportedError, "graph input 'frames' is a sequence"),
    "no graph outputs": (no_outputs, ModelError, "declares no outputs"),
    "value produced twice": (value_produced_twice, ModelError, "'y' is produced twice"),
    "input of the wrong rank": (wrong_rank_into_conv, ShapeError, "node 'conv1' \\(Conv\\): Conv needs X of rank >= 3"),
    "a constant too large to fold": (huge_constant, ModelError,
                                     "node 'fill' \\(ConstantOfShape\\) computes a 4096.0 GiB"),
    "newlines in names": (newlines_in_names, UnsupportedError, "Relu \\(ex\\\\nample"),
    "opset newer than onnx knows": (lambda: make([helper.make_node("Relu", ["x"], ["y"])], opset=999),
                                    UnsupportedError, "ai.onnx opset 999, newer than the installed onnx"),
}


def external_data_escaping_the_directory(folder) -> str:
    inside, outside = os.path.join(folder, "model"), os.path.join(folder, "outside")
    os.makedirs(inside), os.makedirs(outside)
    path = os.path.join(inside, "m.onnx")
    onnx.save(conv(), path, save_as_external_data=True, location="w.bin", size_threshold=0)
    os.replace(os.path.join(inside, "w.bin"), os.path.join(outside, "w.bin"))
    model = onnx.load(path, load_external_data=False)
    model.graph.initializer[0].external_data[0].value = "../outside/w.bin"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("case", sorted(MODELS))
def test_malformed_model_is_one_clear_error(case, tmp_path, capsys):
    build, error, message = MODELS[case]
    path = written(tmp_path, build())
    with pytest.raises(error, match=message) as info:
        cnncompile.load_onnx(path)
    assert str(info.value).isprintable()
    assert assert_one_line_cli_error(path, capsys) == f"cnncompile: error: {info.value}"


def test_external_data_escaping_the_directory(tmp_path, capsys):
    path = external_data_escaping_the_directory(str(tmp_path))
    with pytest.raises(ModelError, match="'../outside/w.bin' resolves to .* outside the model's directory"):
        cnncompile.load_onnx(path)
    assert "outside the model's directory" in assert_one_line_cli_error(path, capsys)


@pytest.fixture(scope="module")
def valid_bytes() -> bytes:
    model = make([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c"], ["y"])], initializers=[("w", (4, 3, 3, 3)), ("b", (4,))])
    return model.SerializeToString()


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.999])
def test_truncated_file(fraction, valid_bytes, tmp_path, capsys):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(valid_bytes[: max(1, int(len(valid_bytes) * fraction))])
    with pytest.raises(CnnCompileError):
        cnncompile.load_onnx(str(path))
    assert_one_line_cli_error(str(path), capsys)


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes(seed, tmp_path, capsys):
    rng = np.random.default_rng(seed)
    path = tmp_path / "random.onnx"
    path.write_bytes(rng.bytes(int(rng.integers(1, 4096))))
    with pytest.raises(CnnCompileError):
        cnncompile.load_onnx(str(path))
    assert_one_line_cli_error(str(path), capsys)


def test_flipped_bits_never_escape_as_anything_else(valid_bytes, tmp_path):
    """A seeded sample of one-to-three-bit corruptions: each imports or is a CnnCompileError."""
    rng = np.random.default_rng(0)
    path = tmp_path / "flipped.onnx"
    outcomes = set()
    for _ in range(60):
        data = bytearray(valid_bytes)
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(data))
        try:
            cnncompile.load_onnx(str(path))
            outcomes.add("imported")
        except CnnCompileError as err:
            assert str(err).isprintable()
            outcomes.add(type(err).__name__)
    assert len(outcomes) > 1


# -- onnx's passes run in a child process, so its crashes and hangs become errors -------------


def refuse() -> None:
    raise ModelError("refused in the child")


def test_a_crash_in_the_child_is_an_error():
    with pytest.raises(OnnxCrash, match="onnx crashed \\(SIGABRT\\) while aborting"):
        run_forked(os.abort, what="aborting")


def test_a_hang_in_the_child_is_cut_short():
    with pytest.raises(OnnxCrash, match="did not finish sleeping within 1 s"):
        run_forked(time.sleep, 60, what="sleeping", timeout_s=1)


def test_results_and_errors_come_back_from_the_child():
    assert run_forked(sum, [1, 2, 3], what="adding") == 6
    with pytest.raises(ModelError, match="refused in the child"):
        run_forked(refuse, what="refusing")
