"""Pooling against onnxruntime over the attribute space, ceil_mode's edge cases included."""

import numpy as np
import pytest

import cnncompile
from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.pool import AveragePool, MaxPool
from onnx_harness import check_node, single_node_model

WINDOWS = [
    ((1, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((2, 2, 9, 7), {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]}),
    ((1, 2, 9, 9), {"kernel_shape": [3, 3], "dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    ((1, 2, 7, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 8, 7), {"kernel_shape": [4, 3], "strides": [3, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}),
    ((1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ((1, 2, 10, 9), {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ((1, 2, 9, 9), {"kernel_shape": [2, 3], "strides": [3, 2], "dilations": [2, 2], "ceil_mode": 1}),
    ((1, 2, 7, 9), {"kernel_shape": [3, 3], "strides": [2, 3], "auto_pad": "SAME_UPPER", "ceil_mode": 1}),
    ((2, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 2]}),
    ((1, 2, 10), {"kernel_shape": [2], "strides": [3], "dilations": [2], "ceil_mode": 1}),
    ((1, 2, 5, 6, 7), {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2], "pads": [0, 1, 1, 1, 1, 0]}),
    ((1, 2, 5, 6, 7), {"kernel_shape": [3, 2, 2], "strides": [2, 2, 3], "ceil_mode": 1, "auto_pad": "VALID"}),
]

# ceil_mode: the last window may hang over the padded input's end (even one shorter than the
# window) but is dropped when it would start inside the end padding.
CEIL_EDGES = [
    ((1, 2, 5), {"kernel_shape": [3], "strides": [3], "pads": [1, 1], "ceil_mode": 1}),  # 3rd window dropped
    ((1, 2, 6), {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1}),  # last overhangs the pad
    ((1, 2, 2), {"kernel_shape": [3], "strides": [3], "ceil_mode": 1}),  # input shorter than the window
    ((1, 2, 7, 6), {"kernel_shape": [2, 3], "strides": [3, 2], "pads": [1, 2, 1, 1], "ceil_mode": 1}),
]


def _x(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("x_shape, attrs", WINDOWS + CEIL_EDGES)
def test_max_pool_matches_onnxruntime(x_shape, attrs):
    check_node("MaxPool", {"x": _x(np.random.default_rng(0), x_shape)}, **attrs)


def test_max_pool_storage_order_leaves_values_alone():
    check_node("MaxPool", {"x": _x(np.random.default_rng(1), (1, 2, 6, 6))}, kernel_shape=[2, 2], storage_order=1)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_max_pool_integers(dtype):
    info = np.iinfo(dtype)
    x = np.random.default_rng(2).integers(info.min, info.max, (1, 2, 7, 7), endpoint=True).astype(dtype)
    check_node("MaxPool", {"x": x}, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


@pytest.mark.parametrize("x_shape, attrs", WINDOWS + CEIL_EDGES)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_matches_onnxruntime(x_shape, attrs, count_include_pad):
    x = _x(np.random.default_rng(3), x_shape)
    check_node("AveragePool", {"x": x}, count_include_pad=count_include_pad, **attrs)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("x_shape", [(2, 3, 7), (2, 3, 5, 6), (1, 4, 3, 4, 5)])
def test_global_pools_match_onnxruntime(op, x_shape):
    check_node(op, {"x": _x(np.random.default_rng(4), x_shape)})


@pytest.mark.parametrize(
    "op, shape, attrs, message",
    [
        (MaxPool, (1, 2, 4, 4), {"kernel_shape": (5, 5)}, "does not fit"),
        (MaxPool, (1, 2, 4, 4), {"kernel_shape": (3,)}, "kernel_shape has 1 entries"),
        (MaxPool, (1, 2, 4, 4), {"kernel_shape": (2, 2), "strides": (0, 1)}, "must be positive"),
        (MaxPool, (1, 2, 4, 4), {"kernel_shape": (2, 2), "ceil_mode": 2}, "ceil_mode must be 0 or 1"),
        (MaxPool, (2, 4), {"kernel_shape": (2,)}, "rank >= 3"),
        (AveragePool, (1, 2, 4), {"kernel_shape": (2,), "pads": (1,)}, "pads has 1 entries"),
        (AveragePool, (1, 2, 1), {"kernel_shape": (3,), "ceil_mode": 1}, "does not fit"),
    ],
)
def test_pool_shape_errors(op, shape, attrs, message):
    with pytest.raises(ShapeError, match=message):
        op.infer([TensorType(shape)], op.make_attrs(**attrs))


def test_average_pool_rejects_integers():
    with pytest.raises(ShapeError, match="does not take int8"):
        AveragePool.infer([TensorType((1, 2, 4, 4), DType.INT8)], AveragePool.make_attrs(kernel_shape=(2, 2)))


def test_max_pool_indices_output_is_rejected():
    model = single_node_model("MaxPool", {"x": np.zeros((1, 2, 4, 4), np.float32)},
                              attrs={"kernel_shape": [2, 2]}, n_outputs=2)
    with pytest.raises(UnsupportedError, match="output 1 is requested"):
        cnncompile.load_onnx(model)
