"""Softmax, LogSoftmax and ReduceMean against onnxruntime."""

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops import REGISTRY
from onnx_harness import check_node


def _x(shape=(2, 3, 4, 5), scale=1.0):
    return (np.random.default_rng(0).standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [None, -1, 0, 1, 2, -3])
@pytest.mark.parametrize("scale", [1.0, 1e3])  # 1e3: exp overflows unless shifted by the max
def test_softmax_matches_onnxruntime(op, axis, scale):
    attrs = {} if axis is None else {"axis": axis}
    check_node(op, {"x": _x(scale=scale)}, **attrs)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_rejects_axis_out_of_range(op):
    with pytest.raises(ShapeError, match=rf"{op}: axis 4 is out of range for rank 4"):
        REGISTRY[op].infer([TensorType((2, 3, 4, 5))], REGISTRY[op].make_attrs(axis=4))


@pytest.mark.parametrize("axes", [None, [1], [0, 2], [-1], [3, -3], [0, 1, 2, 3]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_mean_axes_as_input(axes, keepdims):
    constants = {} if axes is None else {"axes": np.array(axes, np.int64)}
    check_node("ReduceMean", {"x": _x()}, constants, opset=18, keepdims=keepdims)


@pytest.mark.parametrize("noop", [0, 1])
@pytest.mark.parametrize("empty", ["omitted", "empty tensor"])
def test_reduce_mean_empty_axes(noop, empty):
    constants = {} if empty == "omitted" else {"axes": np.zeros(0, np.int64)}
    check_node("ReduceMean", {"x": _x()}, constants, opset=18, noop_with_empty_axes=noop, keepdims=0)


@pytest.mark.parametrize("attrs", [{"axes": [2, 3]}, {"axes": [-1], "keepdims": 0}, {}])
def test_reduce_mean_opset13_axes_attribute(attrs):
    check_node("ReduceMean", {"x": _x()}, opset=13, **attrs)


@pytest.mark.parametrize(
    "axes, message", [((4,), r"axis 4 is out of range for rank 4"), ((1, -3), r"axes \[1, -3\] name an axis twice")]
)
def test_reduce_mean_rejects_bad_axes(axes, message):
    with pytest.raises(ShapeError, match=message):
        REGISTRY["ReduceMean"].infer([TensorType((2, 3, 4, 5))], REGISTRY["ReduceMean"].make_attrs(axes=axes))


def test_reduce_mean_flops():
    op, x = REGISTRY["ReduceMean"], TensorType((2, 3, 4, 5))
    attrs = op.make_attrs(axes=(2, 3))
    (y,) = op.infer([x], attrs)
    assert y.shape == (2, 3, 1, 1) and op.flops([x], [y], attrs) == 120 + 6
