"""Comparisons, Where, boolean and bitwise ops against onnxruntime, and the spec's corners by hand."""

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import REGISTRY
from cnncompile.ops.logic import ShiftDirection
from onnx_harness import check_node


def _ints(low, high, shape, dtype=np.int32, seed=0):
    return np.random.default_rng(seed).integers(low, high, shape).astype(dtype)


def _bools(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 2, shape).astype(bool)


def _run(op, *arrays, **attrs):
    return REGISTRY[op].run([np.asarray(a) for a in arrays], REGISTRY[op].make_attrs(**attrs))[0]


COMPARISONS = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]


@pytest.mark.parametrize("op", COMPARISONS)
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8, np.int8])
def test_comparison_matches_onnxruntime(op, dtype):
    # few distinct values, so that equal pairs are common
    check_node(op, {"a": _ints(0, 3, (2, 3, 4), dtype), "b": _ints(0, 3, (3, 1), dtype, seed=1)})


def test_equal_compares_bools():
    check_node("Equal", {"a": _bools((3, 4)), "b": _bools((4,), seed=1)})


def test_comparisons_give_bool_tensors_of_the_broadcast_shape():
    (t,) = REGISTRY["Less"].infer([TensorType((2, 1, 4)), TensorType((3, 1))], REGISTRY["Less"].make_attrs())
    assert t == TensorType((2, 3, 4), DType.BOOL)
    with pytest.raises(ShapeError, match="Less: takes .* tensors, got bool"):
        REGISTRY["Less"].infer([TensorType((2,), DType.BOOL)] * 2, REGISTRY["Less"].make_attrs())


@pytest.mark.parametrize("shapes", [((3, 4),) * 3, ((3, 1), (1, 4), (4,)), ((1,), (2, 3, 4), (3, 1))])
def test_where_matches_onnxruntime(shapes):
    c, x, y = shapes
    rng = np.random.default_rng(0)
    check_node("Where", {"c": _bools(c), "x": rng.standard_normal(x).astype(np.float32),
                         "y": rng.standard_normal(y).astype(np.float32)})


def test_where_picks_by_condition_and_needs_a_bool_one():
    assert _run("Where", np.array([True, False]), np.array([1, 2]), np.array([3, 4])).tolist() == [1, 4]
    with pytest.raises(ShapeError, match="Where: takes bool tensors, got float32"):
        REGISTRY["Where"].infer([TensorType((2,))] * 3, REGISTRY["Where"].make_attrs())


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_boolean_ops_match_onnxruntime(op):
    check_node(op, {"a": _bools((2, 3, 4)), "b": _bools((3, 1), seed=1)})


def test_boolean_truth_tables():
    a, b = np.array([False, False, True, True]), np.array([False, True, False, True])
    assert _run("And", a, b).tolist() == [False, False, False, True]
    assert _run("Or", a, b).tolist() == [False, True, True, True]
    assert _run("Xor", a, b).tolist() == [False, True, True, False]
    assert _run("Not", a).tolist() == [True, True, False, False]
    check_node("Not", {"x": _bools((3, 4))})


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_bitwise_ops_match_onnxruntime(op, dtype):
    low = 0 if dtype == np.uint8 else -100
    check_node(op, {"a": _ints(low, 100, (3, 4), dtype), "b": _ints(low, 100, (4,), dtype, seed=1)})


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_bitwise_not_matches_onnxruntime(dtype):
    check_node("BitwiseNot", {"x": _ints(0 if dtype == np.uint8 else -100, 100, (3, 4), dtype)})


def test_bitwise_values_by_hand():
    assert _run("BitwiseAnd", np.array([12], np.int32), np.array([10], np.int32)).tolist() == [8]
    assert _run("BitwiseOr", np.array([12], np.int32), np.array([10], np.int32)).tolist() == [14]
    assert _run("BitwiseXor", np.array([12], np.int32), np.array([10], np.int32)).tolist() == [6]
    assert _run("BitwiseNot", np.array([0, 5], np.uint8)).tolist() == [255, 250]
    assert _run("BitwiseNot", np.array([0, 5], np.int8)).tolist() == [-1, -6]


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift_matches_onnxruntime(direction):
    check_node("BitShift", {"x": _ints(0, 256, (3, 4), np.uint8), "y": _ints(0, 8, (4,), np.uint8, seed=1)},
               direction=direction)


def test_bitshift_loses_the_bits_shifted_out():
    x, y = np.array([16, 255, 1, 200], np.uint8), np.array([1, 4, 8, 9], np.uint8)
    assert _run("BitShift", x, y, direction=ShiftDirection.LEFT).tolist() == [32, 240, 0, 0]
    assert _run("BitShift", x, y, direction=ShiftDirection.RIGHT).tolist() == [8, 15, 0, 0]
    with pytest.raises(ShapeError, match="BitShift: takes uint8 tensors, got int32"):
        REGISTRY["BitShift"].infer([TensorType((2,), DType.INT32)] * 2,
                                   REGISTRY["BitShift"].make_attrs(direction=ShiftDirection.LEFT))
