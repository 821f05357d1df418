"""MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv against onnxruntime, to the bit, with zero
points, per-column and per-channel parameters, a bias and saturating outputs; the shape rules' errors."""

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import REGISTRY
from test_quantize import check

RNG = np.random.default_rng(1)
I8, U8 = DType.INT8, DType.UINT8


def _ints(*shape, dtype, low=None, high=None):
    info = np.iinfo(dtype)
    low = info.min if low is None else low
    high = int(info.max) + 1 if high is None else high
    return RNG.integers(low, high, shape).astype(dtype)


def _scales(*shape, low=0.01, high=0.05):
    return RNG.uniform(low, high, shape).astype(np.float32)


def _scalar(value, dtype):
    return np.array(value, dtype)


# -- matrix products -----------------------------------------------------------------------------


@pytest.mark.parametrize("a_type, b_type", [(np.uint8, np.uint8), (np.uint8, np.int8), (np.int8, np.int8)])
def test_matmul_integer_with_zero_points(a_type, b_type):
    check("MatMulInteger", {"a": _ints(5, 7, dtype=a_type), "b": _ints(7, 4, dtype=b_type)},
          {"za": _ints(dtype=a_type), "zb": _ints(dtype=b_type)})


def test_matmul_integer_per_column_zero_point_and_batches():
    check("MatMulInteger", {"a": _ints(2, 3, 6, dtype=np.uint8), "b": _ints(6, 5, dtype=np.uint8)},
          {"za": _scalar(7, np.uint8), "zb": _ints(5, dtype=np.uint8)})


def test_matmul_integer_without_zero_points():
    check("MatMulInteger", {"a": _ints(3, 6, dtype=np.uint8), "b": _ints(2, 6, 4, dtype=np.int8)})


def test_matmul_integer_by_hand():
    """(A - 1) @ (B - 2) = [[0, 1], [2, 3]] @ [[1], [-1]] = [[-1], [-1]], in int32."""
    op = REGISTRY["MatMulInteger"]
    (y,) = op.run([np.array([[1, 2], [3, 4]], np.uint8), np.array([[3], [1]], np.uint8), np.uint8(1), np.uint8(2)],
                  op.make_attrs())
    np.testing.assert_array_equal(y, [[-1], [-1]])
    assert y.dtype == np.int32


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_matmul_saturates(dtype):
    """y_scale small enough that most results leave the 8-bit range (where onnx's stored conformance
    values wrap, onnxruntime saturates)."""
    constants = {"sa": _scalar(0.03, np.float32), "za": _ints(dtype=dtype, low=-5 if dtype == np.int8 else 100,
                                                             high=5 if dtype == np.int8 else 150),
                 "b": _ints(8, 5, dtype=dtype), "sb": _scalar(0.02, np.float32),
                 "zb": _ints(dtype=dtype, low=0, high=9),
                 "sy": _scalar(0.01, np.float32), "zy": _ints(dtype=dtype, low=0, high=9)}
    (y,) = check("QLinearMatMul", {"a": _ints(2, 3, 8, dtype=dtype)}, constants,
                 input_order=["a", "sa", "za", "b", "sb", "zb", "sy", "zy"])
    info = np.iinfo(dtype)
    assert np.isin(y, [info.min, info.max]).mean() > 0.3


def test_qlinear_matmul_per_column_b_scale_and_zero_point():
    constants = {"sa": _scalar(0.02, np.float32), "za": _scalar(3, np.int8), "b": _ints(6, 4, dtype=np.int8),
                 "sb": _scales(4), "zb": np.zeros(4, np.int8), "sy": _scalar(0.5, np.float32),
                 "zy": _scalar(-3, np.int8)}
    check("QLinearMatMul", {"a": _ints(5, 6, dtype=np.int8)}, constants,
          input_order=["a", "sa", "za", "b", "sb", "zb", "sy", "zy"])


# -- convolutions --------------------------------------------------------------------------------


@pytest.mark.parametrize("attrs", [{}, {"pads": [1, 0, 2, 1], "strides": [2, 1]}, {"dilations": [2, 2]}],
                         ids=["plain", "padded-strided", "dilated"])
def test_conv_integer_with_zero_points_pads_with_the_zero_point(attrs):
    """Padding holds x's zero point, so a padded tap adds (zp - zp) * w = 0."""
    check("ConvInteger", {"x": _ints(1, 3, 7, 6, dtype=np.uint8)},
          {"w": _ints(4, 3, 3, 3, dtype=np.uint8), "zx": _scalar(131, np.uint8), "zw": _scalar(7, np.uint8)}, **attrs)


def test_conv_integer_grouped_without_zero_points():
    check("ConvInteger", {"x": _ints(2, 4, 5, 5, dtype=np.uint8)}, {"w": _ints(6, 2, 2, 2, dtype=np.uint8)},
          group=2, pads=[1, 1, 1, 1])


def test_conv_integer_by_hand():
    """x = [1, 2, 3] - 1, w = [1, 1] - 0, pads 1: [0, 0+1, 1+2, 2+0] = [0, 1, 3, 2]."""
    op = REGISTRY["ConvInteger"]
    x = np.array([[[1, 2, 3]]], np.uint8)
    (y,) = op.run([x, np.array([[[1, 1]]], np.uint8), np.uint8(1), np.uint8(0)], op.make_attrs(pads=(1, 1)))
    np.testing.assert_array_equal(y, [[[0, 1, 3, 2]]])


@pytest.mark.parametrize("bias", [True, False])
def test_qlinear_conv_per_channel_w_scale_and_bias(bias):
    """uint8 x, int8 w with a scale per output channel (onnxruntime's per-channel form: w's zero points
    0), an int32 bias; y_scale chosen so some outputs saturate."""
    constants = {"sx": _scalar(0.02, np.float32), "zx": _scalar(128, np.uint8),
                 "w": _ints(5, 3, 3, 3, dtype=np.int8),
                 "sw": _scales(5, low=0.002, high=0.02), "zw": np.zeros(5, np.int8), "sy": _scalar(0.05, np.float32),
                 "zy": _scalar(120, np.uint8)}
    if bias:
        constants["b"] = _ints(5, dtype=np.int32, low=-3000, high=3000)
    (y,) = check("QLinearConv", {"x": _ints(1, 3, 8, 8, dtype=np.uint8)}, constants, pads=[1, 1, 1, 1],
                 input_order=["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", *(["b"] if bias else [])])
    assert 0 < np.isin(y, [0, 255]).mean() < 0.9


def test_qlinear_conv_int8_grouped_strided():
    constants = {"sx": _scalar(0.03, np.float32), "zx": _scalar(-4, np.int8),
                 "w": _ints(4, 2, 2, 2, dtype=np.int8),
                 "sw": _scalar(0.01, np.float32), "zw": _scalar(0, np.int8), "sy": _scalar(0.2, np.float32),
                 "zy": _scalar(5, np.int8)}
    check("QLinearConv", {"x": _ints(2, 4, 6, 5, dtype=np.int8)}, constants, group=2, strides=[2, 2],
          input_order=["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"])


# -- shape rules ---------------------------------------------------------------------------------


def _infer(op, *types, **attrs):
    return REGISTRY[op].infer(list(types), REGISTRY[op].make_attrs(**attrs))


S = TensorType(())


@pytest.mark.parametrize(
    "op, types, attrs, message",
    [
        ("MatMulInteger", (TensorType((3, 4)), TensorType((4, 5), U8)), {}, r"A must be int8 or uint8, got float32"),
        ("MatMulInteger", (TensorType((3, 4), U8), TensorType((5, 6), U8)), {}, r"K=4 .* K=5"),
        ("MatMulInteger", (TensorType((3, 4), U8), TensorType((4, 5), U8), TensorType((), I8)), {},
         r"a_zero_point int8\[scalar\] must be of its tensor's type uint8"),
        ("MatMulInteger", (TensorType((3, 4), U8), TensorType((4, 5), U8), TensorType((), U8),
                           TensorType((7,), U8)), {},
         r"b_zero_point uint8\[7\] must hold one value or 5"),
        ("QLinearMatMul", (TensorType((3, 4), U8), S, TensorType((), U8), TensorType((4, 5), U8), TensorType((3,)),
                           TensorType((), U8), S, TensorType((), U8)), {},
         r"b_scale float32\[3\] must be a scalar or 1-D of 5"),
        ("ConvInteger", (TensorType((1, 4, 5, 5), U8), TensorType((6, 3, 3, 3), U8)), {"group": 1},
         r"x has 4 channels and w is \[6, 3, 3, 3\]"),
        ("ConvInteger", (TensorType((1, 3, 5, 5), U8), TensorType((6, 3, 3, 3), U8), TensorType((), U8),
                         TensorType((4,), U8)), {},
         r"w_zero_point uint8\[4\] must hold one value or 6"),
        ("QLinearConv", (TensorType((1, 3, 5, 5), U8), S, TensorType((), U8), TensorType((6, 3, 3, 3), I8),
                         TensorType((6,)), TensorType((6,), I8), S, TensorType((), U8), TensorType((6,))), {},
         r"B float32\[6\] must be int32 of shape \[6\]"),
        ("QLinearConv", (TensorType((1, 3, 5, 5), U8), S, TensorType((), U8), TensorType((6, 3, 3, 3), I8),
                         TensorType((6,)), TensorType((6,), I8), S, TensorType((2,), U8)), {},
         r"y_zero_point uint8\[2\] must hold one value"),
    ],
)
def test_shape_rules_reject_with_a_clear_message(op, types, attrs, message):
    with pytest.raises(ShapeError, match=message):
        _infer(op, *types, **attrs)


def test_shape_rules_give_int32_and_the_output_zero_points_type():
    assert _infer("MatMulInteger", TensorType((2, 3, 4), U8), TensorType((4, 5), I8)) == \
        [TensorType((2, 3, 5), DType.INT32)]
    assert _infer("ConvInteger", TensorType((1, 3, 5, 5), U8), TensorType((6, 3, 3, 3), U8), pads=(1, 1, 1, 1)) == \
        [TensorType((1, 6, 5, 5), DType.INT32)]
    assert _infer("QLinearConv", TensorType((1, 3, 5, 5), U8), S, TensorType((), U8), TensorType((6, 3, 3, 3), I8),
                  TensorType((6,)), TensorType((6,), I8), S, TensorType((), I8), strides=(2, 2)) == \
        [TensorType((1, 6, 2, 2), I8)]
