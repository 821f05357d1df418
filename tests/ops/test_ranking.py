"""ArgMax, ArgMin, TopK and Hardmax against onnxruntime and by hand, ties included."""

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import REGISTRY
from onnx_harness import check_node, run_ort, single_node_model


def _ties(shape=(3, 4, 6), dtype=np.float32):
    """Few distinct values, so every axis holds equal elements."""
    return np.random.default_rng(0).integers(-2, 3, shape).astype(dtype)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("select_last_index", [0, 1])
def test_arg_matches_onnxruntime(op, axis, keepdims, select_last_index):
    check_node(op, {"x": _ties()}, opset=13, axis=axis, keepdims=keepdims, select_last_index=select_last_index)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.int8, np.float64])
def test_arg_element_types_match_onnxruntime(dtype):
    for op in ("ArgMax", "ArgMin"):
        check_node(op, {"x": _ties(dtype=dtype)}, opset=13, axis=1)


def test_arg_by_hand():
    x = np.array([[2.0, 7.0, 7.0, 1.0]])
    for op, last, want in [("ArgMax", 0, 1), ("ArgMax", 1, 2), ("ArgMin", 0, 3), ("ArgMin", 1, 3)]:
        (got,) = REGISTRY[op].run([x], REGISTRY[op].make_attrs(axis=1, select_last_index=last))
        assert got.dtype == np.int64 and got.tolist() == [[want]], (op, last)


def test_arg_output_is_int64_and_drops_the_axis_without_keepdims():
    op = REGISTRY["ArgMax"]
    (out,) = op.infer([TensorType((2, 3, 4))], op.make_attrs(axis=1, keepdims=0))
    assert out == TensorType((2, 4), DType.INT64)


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_hardmax_matches_onnxruntime(axis):
    check_node("Hardmax", {"x": _ties()}, opset=13, axis=axis)


def test_hardmax_marks_the_first_largest():
    (got,) = REGISTRY["Hardmax"].run([np.array([[1.0, 3.0, 3.0], [0.0, -1.0, -2.0]])],
                                     REGISTRY["Hardmax"].make_attrs())
    assert got.tolist() == [[0, 1, 0], [1, 0, 0]]


def _topk(x, k, **attrs):
    return single_node_model("TopK", {"x": x}, {"k": np.array([k], np.int64)}, attrs, n_outputs=2)


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis, k", [(-1, 3), (1, 4), (0, 1), (2, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.uint8])
def test_topk_matches_onnxruntime_ties_included(largest, axis, k, dtype):
    """Values and indices exactly: equal values come out in ascending index order, as onnxruntime gives them."""
    x = _ties(dtype=dtype) if dtype != np.uint8 else _ties(dtype=np.int64).astype(np.uint8)  # 254..2 wrap
    check_node("TopK", {"x": x}, {"k": np.array([k], np.int64)}, n_outputs=2, tol=0, axis=axis, largest=largest)


def test_topk_with_k_as_an_attribute_of_opset_1():
    x = _ties()
    check_node("TopK", {"x": x}, n_outputs=2, tol=0, opset=1, k=2, axis=1)


def test_topk_unsorted_holds_the_same_elements_as_onnxruntime():
    """sorted=0 leaves the order unspecified (onnxruntime's is a heap's); the set of (value, index) pairs is not."""
    x = _ties((2, 9))
    values, indices = run_ort(_topk(x, 4, sorted=0), {"x": x})
    op = REGISTRY["TopK"]
    got_values, got_indices = op.run([x], op.make_attrs(k=(4,), sorted=0))
    for row in range(2):
        assert sorted(zip(got_indices[row], got_values[row])) == sorted(zip(indices[row], values[row]))


def test_topk_by_hand():
    x = np.array([[1.0, 3.0, 3.0, 2.0, 3.0]])
    op = REGISTRY["TopK"]
    values, indices = op.run([x], op.make_attrs(k=(3,)))
    assert values.tolist() == [[3, 3, 3]] and indices.tolist() == [[1, 2, 4]]
    values, indices = op.run([x], op.make_attrs(k=(3,), largest=0))
    assert values.tolist() == [[1, 2, 3]] and indices.tolist() == [[0, 3, 1]]


def test_topk_of_the_lowest_integers_does_not_wrap():
    """Sorting by -x would wrap int64's minimum (and every uint8) and put it first."""
    x = np.array([[np.iinfo(np.int64).min, 0, 5]])
    values, indices = REGISTRY["TopK"].run([x], REGISTRY["TopK"].make_attrs(k=(1,)))
    assert values.tolist() == [[5]] and indices.tolist() == [[2]]


def test_topk_shapes_and_bounds():
    op = REGISTRY["TopK"]
    values, indices = op.infer([TensorType((2, 7))], op.make_attrs(k=(3,)))
    assert values == TensorType((2, 3)) and indices == TensorType((2, 3), DType.INT64)
    with pytest.raises(ShapeError, match=r"TopK: k=8 is out of range for axis 1 of \[2, 7\]"):
        op.infer([TensorType((2, 7))], op.make_attrs(k=(8,)))
