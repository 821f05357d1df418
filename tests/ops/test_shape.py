"""Shape, Gather, Slice, Constant and ConstantOfShape against onnxruntime, plus their shape errors."""

import numpy as np
import pytest
from onnx import numpy_helper

import cnncompile
from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.shape import Constant, ConstantOfShape, Gather, Shape, Slice
from onnx_harness import check_node, single_node_model

INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# -- Shape ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attrs", [{}, {"start": 1}, {"end": -1}, {"start": -3, "end": 10}, {"start": 3, "end": 1},
                                   {"start": -10, "end": 2}])
def test_shape(attrs):
    check_node("Shape", {"x": rand(2, 3, 4, 5)}, opset=21, **attrs)


def test_shape_folds_to_an_int64_constant():
    graph = cnncompile.load_onnx(single_node_model("Shape", {"x": rand(2, 3, 4)}, attrs={"start": 1}))
    assert not graph.nodes
    assert graph.outputs[0].type == TensorType((2,), DType.INT64)
    assert Shape.value_independent


# -- Gather -------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis, indices", [
    (0, np.array(1)),
    (0, ints(0, -1, 2, 0)),
    (1, ints(-3, 2)),
    (-1, np.array([[0, 4], [-1, -5]], dtype=np.int64)),
    (2, np.array([3, 1], dtype=np.int32)),
])
def test_gather_constant_indices(axis, indices):
    check_node("Gather", {"x": rand(3, 4, 5)}, {"i": indices}, axis=axis)


def test_gather_indices_as_graph_input():
    check_node("Gather", {"x": rand(6, 2), "i": ints(5, -6, 0, 3)}, axis=0)


def test_gather_rejects_float_indices_and_out_of_range():
    with pytest.raises(ShapeError, match="int32 or int64"):
        Gather.infer([TensorType((3, 4)), TensorType((2,))], Gather.make_attrs())
    with pytest.raises(ShapeError, match=r"axis 1 of \[3, 4\] has 4 entries"):
        Gather.run([np.zeros((3, 4)), ints(1, 4)], Gather.make_attrs(axis=1))


# -- Slice ------------------------------------------------------------------------------------


@pytest.mark.parametrize("starts, ends, axes, steps", [
    ((1, 0), (3, -1), None, None),
    ((-3,), (INT64_MAX,), (2,), None),
    ((0, 1), (5, 4), (-1, 1), (2, 2)),
    ((-1,), (INT64_MIN,), (0,), (-1,)),
    ((10, 3), (-10, 0), (1, 2), (-2, -1)),
    ((2,), (2,), (1,), None),
    ((-100, 100), (100, -100), (0, 1), (1, -3)),
])
def test_slice(starts, ends, axes, steps):
    constants = {"starts": ints(*starts), "ends": ints(*ends)}
    order = ["x", "starts", "ends"]
    if axes is not None:
        constants["axes"] = ints(*axes)
        order.append("axes")
    if steps is not None:
        constants["steps"] = ints(*steps)
        order += [""] * (4 - len(order)) + ["steps"]
    check_node("Slice", {"x": rand(4, 5, 6)}, constants, input_order=order)


def test_slice_opset1_attributes():
    check_node("Slice", {"x": rand(4, 5, 6)}, opset=9, starts=[1, -4], ends=[3, 1000], axes=[0, 2])
    check_node("Slice", {"x": rand(4, 5)}, opset=9, starts=[1, 1], ends=[-1, 4])


@pytest.mark.parametrize("attrs, message", [
    ({"starts": (0, 1), "ends": (2,)}, "one entry each"),
    ({"starts": (0,), "ends": (2,), "steps": (0,)}, "a step must be non-zero"),
    ({"starts": (0,), "ends": (2,), "axes": (3,)}, "axis 3 is out of range"),
    ({"starts": (0, 0), "ends": (2, 2), "axes": (1, -2)}, "twice"),
])
def test_slice_errors(attrs, message):
    with pytest.raises(ShapeError, match=message):
        Slice.infer([TensorType((4, 5, 6))], Slice.make_attrs(**attrs))


# -- Constant and ConstantOfShape ---------------------------------------------------------------


@pytest.mark.parametrize("attrs", [
    {"value": numpy_helper.from_array(rand(2, 3))},
    {"value": numpy_helper.from_array(ints(4, -1))},
    {"value_float": 2.5},
    {"value_floats": [1.5, -0.25, 3.0]},
    {"value_int": -7},
    {"value_ints": [3, 0, 9]},
])
def test_constant(attrs):
    check_node("Constant", {}, **attrs)


def test_constant_needs_exactly_one_value():
    with pytest.raises(ShapeError, match="exactly one"):
        Constant.infer([], Constant.make_attrs(value_int=1, value_float=2.0))
    with pytest.raises(ShapeError, match="none"):
        Constant.infer([], Constant.make_attrs())


@pytest.mark.parametrize("shape, value", [
    ((2, 3), None),
    ((4,), np.array([7], dtype=np.int64)),
    ((1, 2, 2), np.array([-1.25], dtype=np.float32)),
    ((), np.array([3], dtype=np.int32)),
    ((0, 3), None),
])
def test_constant_of_shape(shape, value):
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    check_node("ConstantOfShape", {}, {"shape": ints(*shape)}, **attrs)


def test_constant_of_shape_errors():
    with pytest.raises(ShapeError, match="negative dims"):
        ConstantOfShape.infer([], ConstantOfShape.make_attrs(shape=(2, -1)))
    with pytest.raises(ShapeError, match="one element"):
        ConstantOfShape.infer([], ConstantOfShape.make_attrs(shape=(2,), value=np.zeros(2, np.float32)))
