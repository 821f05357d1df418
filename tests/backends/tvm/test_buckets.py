"""Batch buckets: one artifact built for batches 1, 4 and 16 runs any batch up to 16, padded to the
nearest bucket, and matches onnxruntime; what buckets cannot do is refused, naming the input."""

import json
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from cnncompile.backends.tvm.artifact import MANIFEST
from cnncompile.buckets import Buckets
from cnncompile.cli import main
from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.numerics import relative_error
from cnncompile.tools.models import parse_input_shape
from onnx_harness import he_normal, run_ort
from test_cli import one_line_error

SIZES = (1, 4, 16)
FEATURES = 4 * 4 * 4


def conv_classifier() -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> Flatten -> Gemm on [N, 3, 8, 8]: every output row from its own input row."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fc", "fc_b"], ["y"], transB=1)]
    weights = {"w": he_normal(rng, (4, 3, 3, 3)), "b": rng.standard_normal(4).astype(np.float32),
               "fc": he_normal(rng, (10, FEATURES)), "fc_b": rng.standard_normal(10).astype(np.float32)}
    graph = helper.make_graph(nodes, "classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                              [numpy_helper.from_array(a, n) for n, a in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "classifier.onnx"
    onnx.save(conv_classifier(), path)
    return path


@pytest.fixture(scope="module")
def artifact(onnx_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "buckets"
    assert main(["compile", str(onnx_path), "--target", "llvm", "--input-shape", "x=1,4,16x3x8x8",
                 "-o", str(out)]) == 0
    return out


def batch_of(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + rows).standard_normal((rows, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("rows, bucket", [(1, 1), (3, 4), (4, 4), (9, 16), (16, 16)])
def test_any_batch_up_to_the_largest_runs_in_the_nearest_bucket_and_matches_onnxruntime(artifact, onnx_path, rows,
                                                                                       bucket, monkeypatch):
    model = cnncompile.load(artifact)
    used = []
    runner_for = model.bucket_runner
    monkeypatch.setattr(model, "bucket_runner", lambda size: used.append(size) or runner_for(size))
    x = batch_of(rows)
    got = model.run({"x": x})["y"]
    (want,) = run_ort(onnx.load(onnx_path), {"x": x})
    assert used == [bucket]
    assert got.shape == (rows, 10)
    assert relative_error(got, want) <= 1e-5


def test_the_artifact_records_its_buckets_and_reports_the_largest(artifact):
    manifest = json.loads((artifact / MANIFEST).read_text())
    assert manifest["buckets"] == {"inputs": ["x"], "sizes": list(SIZES), "dim": 0}
    assert manifest["inputs"][0]["shape"] == [16, 3, 8, 8]
    model = cnncompile.load(artifact)
    assert [model.bucket_runner(size).signature.outputs[0].shape for size in SIZES] == [(1, 10), (4, 10), (16, 10)]
    assert [model.bucket_runner(size).function for size in SIZES] == ["main_batch1", "main_batch4", "main"]


def test_weights_are_stored_once_for_every_bucket(onnx_path):
    """TVM's executable pools constants by content: every bucket's conv and Gemm read their weights
    from the same pool entries (the conv's packed weight too, where the buckets' plans pack it alike)."""
    model = cnncompile.compile(onnx_path, target="llvm", input_shapes={"x": (list(SIZES), 3, 8, 8)})
    calls = re.findall(r"^@(main\S*):|call  (fusedconv|gemm)_\d+\s+in: (.*?) dst", model.library.as_text(), re.M)
    weights: dict[str, list[tuple[str, ...]]] = {}
    for function, op, operands in calls:
        if function:
            current = weights.setdefault(function, [])
        else:
            current.append((op, *re.findall(r"c\[\d+\]", operands)))
    assert set(weights) == {"main_batch1", "main_batch4", "main"}
    assert [len(w) for w in weights.values()] == [2, 2, 2]
    assert weights["main_batch1"] == weights["main_batch4"] == weights["main"]


def test_a_batch_above_the_largest_bucket_names_the_input_and_the_buckets(artifact):
    with pytest.raises(ModelError, match=r"input 'x' has batch 17, more than the largest bucket .*1, 4, 16"):
        cnncompile.load(artifact).run({"x": batch_of(17)})


def test_other_dims_must_be_as_compiled(artifact):
    with pytest.raises(ModelError, match=r"input 'x' has shape \[2, 3, 9, 8\].*\[N, 3, 8, 8\] for N up to 16"):
        cnncompile.load(artifact).run({"x": np.zeros((2, 3, 9, 8), np.float32)})


def test_cli_runs_a_batch_between_buckets(artifact, tmp_path, capsys):
    np.save(tmp_path / "x.npy", batch_of(3))
    assert main(["run", str(artifact), "--input", f"x={tmp_path / 'x.npy'}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["y"]["shape"] == [3, 10]
    np.save(tmp_path / "big.npy", batch_of(17))
    assert main(["run", str(artifact), "--input", f"x={tmp_path / 'big.npy'}"]) == 2
    assert "batch buckets 1, 4, 16" in one_line_error(capsys)


@pytest.mark.parametrize("shape, complaint", [
    ("x=1x3x8,16x8", "only the batch dim \\(dim 0\\) may list sizes"),
    ("x=1,,4x3x8x8", "is not NAME=DxDx"),
    ("x=0,4x3x8x8", "must be a positive integer"),
])
def test_cli_refuses_bucket_lists_it_cannot_build(onnx_path, tmp_path, capsys, shape, complaint):
    assert main(["compile", str(onnx_path), "--target", "llvm", "--input-shape", shape,
                 "-o", str(tmp_path / "out")]) == 2
    assert re.search(complaint, one_line_error(capsys))
    assert not (tmp_path / "out").exists()


def test_commands_that_take_one_shape_refuse_a_list(onnx_path, capsys):
    assert main(["inspect", str(onnx_path), "--no-pager", "--input-shape", "x=1,4x3x8x8"]) == 2
    assert "only `compile` builds" in one_line_error(capsys)


def test_parse_input_shape_reads_lists_of_sizes():
    assert parse_input_shape("images=1,4,16x3x64x64") == ("images", ((1, 4, 16), 3, 64, 64))
    assert parse_input_shape("images=2x3x64x64") == ("images", (2, 3, 64, 64))
    with pytest.raises(CnnCompileError, match="is not NAME=DxDx"):
        parse_input_shape("images=1,3,64,64")


def test_every_batched_input_lists_the_same_buckets():
    with pytest.raises(ModelError, match="different batch buckets per input"):
        Buckets.of({"a": ((1, 4), 3), "b": ((1, 8), 3)})
    assert Buckets.of({"a": ((4, 1, 4), 3), "b": (2, 3)}) == Buckets(("a",), (1, 4))
    assert Buckets.of({"a": (1, 3)}) is None


def test_outputs_that_do_not_carry_the_batch_are_refused(tmp_path):
    """Flatten(axis=0) makes [1, N*10]: padded rows would be inside the one output row."""
    model = conv_classifier()
    model.graph.node.append(helper.make_node("Flatten", ["y"], ["all"], axis=0))
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("all", TensorProto.FLOAT, None))
    onnx.save(model, tmp_path / "flat.onnx")
    with pytest.raises(ModelError, match=r"output 'all' is \[1, 40\] when the batch is 4.*dim 0 to be the batch"):
        cnncompile.compile(tmp_path / "flat.onnx", target="llvm", input_shapes={"x": ((1, 4), 3, 8, 8)})
