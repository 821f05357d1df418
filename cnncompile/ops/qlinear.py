"""Integer matrix products and convolutions of quantized tensors: MatMulInteger and ConvInteger
(an int32 result), QLinearMatMul and QLinearConv (requantized to the output's int8/uint8).

Each is the float definition applied to the shifted operands (x - zero point), whose products
are integers: a sum of up to 2^37 products of |value| <= 255 * 256 stays below 2^53, so the
reference computes it exactly in float64 by the ordinary matmul and im2col kernels (NumPy's
integer matmul would not use BLAS), then casts to int32. A conv's padding holds the zero
point (0 after the shift), as onnxruntime pads. The QLinear ops requantize as onnxruntime
does, in float32: y = saturate(round_half_to_even(acc * (a_scale * b_scale / y_scale)) + y_zero_point),
acc being the int32 product plus QLinearConv's int32 bias; the multiplier is per output
column (QLinearMatMul) or channel (QLinearConv) when a scale is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cnncompile.algorithms.reference import im2col_gemm
from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.conv import ConvAttrs, conv_window
from cnncompile.ops.linalg import MatMul
from cnncompile.ops.quantize import integer_range
from cnncompile.ops.registry import CostRule, declare

BYTES = frozenset({DType.INT8, DType.UINT8})
SCALE_TYPES = frozenset({DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16})


def _check_byte(op: str, what: str, t: TensorType) -> None:
    if t.dtype not in BYTES:
        raise ShapeError(f"{op}: {what} must be int8 or uint8, got {t}")


def _check_zero_point(op: str, what: str, zero_point: TensorType | None, of: TensorType,
                      lengths: tuple[int, ...]) -> None:
    """A zero point has its tensor's type and one element, or `lengths` elements (per row/column/channel)."""
    if zero_point is None:
        return
    if zero_point.dtype != of.dtype:
        raise ShapeError(f"{op}: {what} {zero_point} must be of its tensor's type {of.dtype.value}")
    if zero_point.numel not in (1, *lengths):
        raise ShapeError(f"{op}: {what} {zero_point} must hold one value or {' or '.join(map(str, lengths))}")


def _check_vector(op: str, *params: TensorType | None) -> None:
    """A convolution's zero points are scalars or vectors (one per output channel), not N-D tensors."""
    for param in params:
        if param is not None and param.rank > 1:
            raise ShapeError(f"{op}: zero point {param} must be a scalar or 1-D")


def _check_scale(op: str, what: str, scale: TensorType, lengths: tuple[int, ...] = ()) -> None:
    if scale.dtype not in SCALE_TYPES:
        raise ShapeError(f"{op}: {what} must be float32, float16 or bfloat16, got {scale}")
    if scale.numel not in (1, *lengths) or scale.rank > 1:
        raise ShapeError(f"{op}: {what} {scale} must be a scalar" + (f" or 1-D of {lengths[0]}" if lengths else ""))


def shifted(values: np.ndarray, zero_point: np.ndarray | None) -> np.ndarray:
    """values - zero_point, exactly, in float64 (broadcast as the caller shaped the zero point)."""
    out = values.astype(np.float64)
    return out if zero_point is None else out - np.asarray(zero_point, np.float64)


def requantize(acc: np.ndarray, multiplier: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """saturate(rint(acc * multiplier) + zero_point) in the zero point's type, in float32 as onnxruntime."""
    dtype = DType.of(zero_point.dtype)
    low, high = integer_range(dtype)
    scaled = np.rint(acc.astype(np.float32) * multiplier.astype(np.float32))
    return np.clip(scaled + zero_point.astype(np.float64), low, high).astype(dtype.numpy)


def per_column(param: np.ndarray) -> np.ndarray:
    """A parameter of QLinearMatMul's output: one value (0-D) or one per column (1-D, along the last axis)."""
    param = np.asarray(param)
    return param.reshape(()) if param.size == 1 else param.reshape(-1)


def multiplier(*scales: np.ndarray, divisor: np.ndarray) -> np.ndarray:
    """The product of `scales` over `divisor`, in float32: what each int32 accumulator is scaled by."""
    product = np.float32(1)
    for scale in scales:
        product = product * np.asarray(scale, np.float32)
    return product / np.asarray(divisor, np.float32)


# -- matrix products -----------------------------------------------------------------------------


def product_shape(a: TensorType, b: TensorType) -> TensorType:
    """MatMul's result shape for these operands, in int32."""
    out = MatMul.shape_rule(TensorType(a.shape, DType.INT32), TensorType(b.shape, DType.INT32))
    return TensorType(out.shape, DType.INT32)


def row_zero_point(zero_point: np.ndarray | None, a: np.ndarray) -> np.ndarray | None:
    """A's zero point broadcast against A: a vector of A's M rows is one per row ([M, 1])."""
    if zero_point is None:
        return None
    zero_point = np.asarray(zero_point)
    if zero_point.ndim == 1 and zero_point.size > 1 and a.ndim >= 2:
        return zero_point.reshape(-1, 1)
    return zero_point.reshape(()) if zero_point.size == 1 else zero_point


def _matmul_integer_shape(a: TensorType, b: TensorType, a_zero_point: TensorType | None = None,
                          b_zero_point: TensorType | None = None) -> TensorType:
    _check_byte("MatMulInteger", "A", a)
    _check_byte("MatMulInteger", "B", b)
    out = product_shape(a, b)
    rows = a.shape[-2] if a.rank > 1 else 1
    columns = b.shape[-1] if b.rank > 1 else 1
    _check_zero_point("MatMulInteger", "a_zero_point", a_zero_point, a, (rows, math.prod(a.shape[:-1])))
    _check_zero_point("MatMulInteger", "b_zero_point", b_zero_point, b, (columns, math.prod(b.shape[:-2]) * columns))
    return out


def _product_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    """2*M*N*K per batch (a multiply-add per output element and step of K), the shifts being free."""
    return 2 * outputs[0].numel * inputs[0].shape[-1]


@declare("MatMulInteger", inputs=("A", "B", "a_zero_point?", "b_zero_point?"), shape=_matmul_integer_shape,
         flops=_product_flops)
def MatMulInteger(a, b, a_zero_point=None, b_zero_point=None):
    """(A - a_zero_point) @ (B - b_zero_point) in int32; zero points per tensor, per row of A, per column of B."""
    return np.matmul(shifted(a, row_zero_point(a_zero_point, a)), shifted(b, b_zero_point)).astype(np.int32)


def _qlinear_matmul_shape(a: TensorType, a_scale: TensorType, a_zero_point: TensorType, b: TensorType,
                          b_scale: TensorType, b_zero_point: TensorType, y_scale: TensorType,
                          y_zero_point: TensorType) -> TensorType:
    op = "QLinearMatMul"
    _check_byte(op, "a", a)
    _check_byte(op, "b", b)
    _check_byte(op, "y_zero_point", y_zero_point)
    out = product_shape(a, b)
    columns = (b.shape[-1],) if b.rank > 1 else ()
    _check_scale(op, "a_scale", a_scale)
    _check_scale(op, "b_scale", b_scale, columns)
    _check_scale(op, "y_scale", y_scale, columns)
    _check_zero_point(op, "a_zero_point", a_zero_point, a, ())
    _check_zero_point(op, "b_zero_point", b_zero_point, b, columns)
    if y_zero_point.numel not in (1, *columns):
        raise ShapeError(f"{op}: y_zero_point {y_zero_point} must hold one value or one per output column")
    return TensorType(out.shape, y_zero_point.dtype)


@declare("QLinearMatMul", inputs=("a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale",
                                  "y_zero_point"), outputs=("y",), shape=_qlinear_matmul_shape, flops=_product_flops)
def QLinearMatMul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """The int32 product (a - a_zero_point) @ (b - b_zero_point) requantized: scaled by a_scale * b_scale /
    y_scale, rounded half to even, plus y_zero_point, saturated; b's and y's parameters may be per column."""
    acc = np.matmul(shifted(a, a_zero_point.reshape(())), shifted(b, per_column(b_zero_point)))
    scale = multiplier(a_scale.reshape(()), per_column(b_scale), divisor=per_column(y_scale))
    return requantize(acc, scale, per_column(y_zero_point))


# -- convolutions --------------------------------------------------------------------------------


def conv_shape(op: str, x: TensorType, w: TensorType, attrs: dict) -> TensorType:
    """The int32 conv result's type, after the checks Conv makes of X, W and the window."""
    group = attrs["group"]
    _check_byte(op, "x", x)
    _check_byte(op, "w", w)
    if x.rank < 3 or w.rank != x.rank:
        raise ShapeError(f"{op} needs x of rank >= 3 and w of the same rank, got x {x} and w {w}")
    if group < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise ShapeError(f"{op} with group={group}: x has {x.shape[1]} channels and w is {list(w.shape)}; need x "
                         "channels = w.shape[1] * group and w.shape[0] divisible by group")
    if attrs["kernel_shape"] is not None and tuple(attrs["kernel_shape"]) != tuple(w.shape[2:]):
        raise ShapeError(f"{op}: kernel_shape {list(attrs['kernel_shape'])} disagrees with w {w}")
    window = conv_window(x.shape, w.shape, attrs, op)
    return TensorType((x.shape[0], w.shape[0], *window.out), DType.INT32)


def integer_conv(x: np.ndarray, w: np.ndarray, x_zero_point, w_zero_point, attrs: dict, op: str) -> np.ndarray:
    """conv(x - x_zero_point, w - w_zero_point) in float64, exact; w's zero point may be per output channel."""
    window = conv_window(x.shape, w.shape, attrs, op)
    if w_zero_point is not None:
        w_zero_point = np.asarray(w_zero_point).reshape(-1, *(1,) * (w.ndim - 1))
    x_shift = None if x_zero_point is None else np.asarray(x_zero_point).reshape(())
    return im2col_gemm(shifted(x, x_shift), shifted(w, w_zero_point), window, attrs["group"])


def _conv_integer_shape(x: TensorType, w: TensorType, x_zero_point: TensorType | None = None,
                        w_zero_point: TensorType | None = None, **attrs) -> TensorType:
    out = conv_shape("ConvInteger", x, w, attrs)
    _check_zero_point("ConvInteger", "x_zero_point", x_zero_point, x, ())
    _check_zero_point("ConvInteger", "w_zero_point", w_zero_point, w, (w.shape[0],))
    _check_vector("ConvInteger", x_zero_point, w_zero_point)
    return out


def _conv_flops(weights: int) -> CostRule:
    """2 x multiply-adds: each output element is a dot product of length (C/group) * prod(kernel), W being
    input `weights`."""

    def rule(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
        return 2 * outputs[0].numel * math.prod(inputs[weights].shape[1:])

    return rule


@declare("ConvInteger", ConvAttrs, inputs=("x", "w", "x_zero_point?", "w_zero_point?"),
         shape=_conv_integer_shape, flops=_conv_flops(1))
def ConvInteger(x, w, x_zero_point=None, w_zero_point=None, **attrs):
    """conv(x - x_zero_point, w - w_zero_point) in int32, padding holding the zero point; w's zero point
    per tensor or per output channel."""
    return integer_conv(x, w, x_zero_point, w_zero_point, attrs, "ConvInteger").astype(np.int32)


def _qlinear_conv_shape(x: TensorType, x_scale: TensorType, x_zero_point: TensorType, w: TensorType,
                        w_scale: TensorType, w_zero_point: TensorType, y_scale: TensorType,
                        y_zero_point: TensorType, b: TensorType | None = None, **attrs) -> TensorType:
    op = "QLinearConv"
    out = conv_shape(op, x, w, attrs)
    channels = (w.shape[0],)
    _check_byte(op, "y_zero_point", y_zero_point)
    _check_scale(op, "x_scale", x_scale)
    _check_scale(op, "w_scale", w_scale, channels)
    _check_scale(op, "y_scale", y_scale)
    _check_zero_point(op, "x_zero_point", x_zero_point, x, ())
    _check_zero_point(op, "w_zero_point", w_zero_point, w, channels)
    _check_vector(op, x_zero_point, w_zero_point)
    if y_zero_point.numel != 1:
        raise ShapeError(f"{op}: y_zero_point {y_zero_point} must hold one value")
    if b is not None and (b.dtype is not DType.INT32 or b.shape != channels):
        raise ShapeError(f"{op}: B {b} must be int32 of shape [{w.shape[0]}]")
    return TensorType(out.shape, y_zero_point.dtype)


@declare("QLinearConv", ConvAttrs, inputs=("x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point",
                                                  "y_scale", "y_zero_point", "B?"),
         shape=_qlinear_conv_shape, flops=_conv_flops(3))
def QLinearConv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b=None, **attrs):
    """conv(x - x_zero_point, w - w_zero_point) + B in int32, requantized: scaled by x_scale * w_scale /
    y_scale (w_scale per tensor or output channel), rounded half to even, plus y_zero_point, saturated."""
    acc = integer_conv(x, w, x_zero_point, w_zero_point, attrs, "QLinearConv")
    spatial = (1,) * (x.ndim - 2)
    if b is not None:
        acc = acc + b.astype(np.float64).reshape(-1, *spatial)
    scale = multiplier(x_scale.reshape(()), w_scale.reshape(-1, *spatial), divisor=y_scale.reshape(()))
    return requantize(acc, scale, y_zero_point.reshape(()))

