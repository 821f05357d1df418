"""Linear quantization: QuantizeLinear, DequantizeLinear (per tensor, per axis, blocked) and
DynamicQuantizeLinear, as opset 21-25 define them.

    QuantizeLinear:   y = saturate(round_half_to_even(x / scale) + zero_point)
    DequantizeLinear: y = (x - zero_point) * scale

A scale (and its zero point) is one value for the whole tensor, a 1-D vector along `axis`
(per axis), or, with `block_size`, a tensor of x's rank whose `axis` dim counts blocks of
`block_size` consecutive elements (blocked; the last block may be short). The quantized
types are the integers int8, uint8, int16, uint16, int4, uint4, int2 and uint2 (and int32 for
DequantizeLinear's input), the four float8s (float8e8m0 is a scale type, never a quantized
one) and float4e2m1. An integer saturates to its range; a float8 saturates to its largest
finite value with `saturate`=1 and otherwise overflows as Cast does, and a float4 saturates
(ops/narrow.py converts both, rounding half to even). The spec requires a float zero point to be
0: a float8 one is not added (so -0 stays -0, as in onnx's reference), float4's is (as there too),
and DequantizeLinear subtracts either to no effect.

Quantizing is discontinuous: a quotient a rounding away from a half decides the integer. So
the quotient is computed in float32 as onnxruntime computes it (every scale type ONNX admits is
at most float32; 16-bit x and scale are widened first, where onnx's reference divides in float16),
whether the reference runs in float32 or float64: the compiled kernel and both reference modes
then agree to the bit. A float16/bfloat16 `precision` (opset 23) divides in that type, as
onnxruntime and onnx's reference do: x and the scale rounded to it, their float32 quotient
rounded to it once more, which is the correctly rounded 16-bit quotient (float32 holds more than
twice a 16-bit float's significand, so the second rounding never errs). Dequantizing is continuous and
follows the reference's compute type like any other float op.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType, is_floating
from cnncompile.ops.narrow import convert
from cnncompile.ops.registry import declare, normalize_axis, per_output

INTEGERS = frozenset({DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.INT4, DType.UINT4, DType.INT2,
                      DType.UINT2})
QUANTIZED = INTEGERS | {DType.FLOAT8E4M3FN, DType.FLOAT8E4M3FNUZ, DType.FLOAT8E5M2, DType.FLOAT8E5M2FNUZ,
                        DType.FLOAT4E2M1}
SCALES = frozenset({DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16})
QUOTIENT = np.float32  # the widest type ONNX lets a quantize's scale or precision have


def _names(dtypes: frozenset[DType]) -> str:
    return ", ".join(d.value for d in DType if d in dtypes)


def integer_range(dtype: DType) -> tuple[int, int]:
    info = ml_dtypes.iinfo(dtype.numpy)
    return int(info.min), int(info.max)


def quantize_values(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | int, dtype: DType,
                    precision: DType | None = None, saturate: int = 1) -> np.ndarray:
    """saturate(rint(x / scale) + zero_point) in `dtype`, the quotient in float32, or in a 16-bit
    `precision`: x and scale rounded to it, then their quotient; a float `dtype` rounds the quotient
    itself (plus a float4 zero point), saturating as `saturate` says."""
    x, scale = x.astype(QUOTIENT), np.asarray(scale).astype(QUOTIENT)
    quotient = x / scale
    if precision is not None and precision.is_reduced:
        narrow = [v.astype(precision.numpy).astype(QUOTIENT) for v in (x, scale)]
        quotient = (narrow[0] / narrow[1]).astype(precision.numpy).astype(QUOTIENT)
    if dtype is DType.FLOAT4E2M1:
        quotient = quotient + np.asarray(zero_point).astype(QUOTIENT)
    if dtype not in INTEGERS:
        return convert(quotient, dtype, saturate)
    low, high = integer_range(dtype)
    with np.errstate(invalid="ignore"):
        return np.clip(np.rint(quotient) + np.asarray(zero_point, np.float64), low, high).astype(dtype.numpy)


# -- where a scale applies -----------------------------------------------------------------------


def check_parameter(op: str, what: str, param: TensorType, x: TensorType, axis: int, block_size: int) -> None:
    """`param` (a scale or zero point) must be per tensor, per axis or blocked along `axis` of x."""
    if block_size < 0:
        raise ShapeError(f"{op}: block_size must be >= 0, got {block_size}")
    if block_size == 0:
        if param.numel == 1 and param.rank <= 1:
            return
        if param.rank == 1 and x.rank and param.shape[0] == x.shape[normalize_axis(axis, x.rank, op)]:
            return
        raise ShapeError(f"{op}: {what} {param} must be a scalar (per tensor) or 1-D with the "
                         f"{x.shape[normalize_axis(axis, x.rank, op)] if x.rank else 1} elements of x {x}'s axis "
                         f"{axis} (per axis); for blocked quantization set block_size")
    a = normalize_axis(axis, x.rank, op)
    blocks = -(-x.shape[a] // block_size)
    want = tuple(blocks if i == a else d for i, d in enumerate(x.shape))
    if param.shape != want:
        raise ShapeError(f"{op}: blocked {what} {param} must have shape {list(want)} for x {x}, axis {axis} "
                         f"and block_size {block_size} (the axis dim counts blocks)")


def same_placement(zero_point: TensorType, scale: TensorType) -> bool:
    """Whether a zero point applies where its scale does: the same shape, or both one value for the whole
    tensor (a scalar and a [1], as onnx's float8 and int4 conformance models pair them)."""
    return zero_point.shape == scale.shape or all(t.numel == 1 and t.rank <= 1 for t in (zero_point, scale))


def expand(param: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point broadcast against x: itself per tensor, along `axis` per axis, repeated
    over each block (the last one cut short) when blocked."""
    param = np.asarray(param)
    if block_size == 0:
        if param.size == 1:
            return param.reshape(())
        dims = [1] * len(shape)
        dims[axis % len(shape)] = param.size
        return param.reshape(dims)
    a = axis % len(shape)
    return np.repeat(param, block_size, axis=a).take(range(shape[a]), axis=a)


# -- QuantizeLinear ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantizeLinearAttrs:
    """`output_dtype` names y's type where no zero point does (uint8 when neither does); `saturate`
    governs float8 outputs only (integers and float4 always saturate); `precision` is the quotient's
    type, the scale's when absent."""

    axis: int = 1
    block_size: int = 0
    output_dtype: DType | None = None
    saturate: int = 1
    precision: DType | None = None


def quantized_type(op: str, zero_point: TensorType | None, output_dtype: DType | None) -> DType:
    """y's element type: the zero point's, or output_dtype, or uint8; they must agree when both are given."""
    dtype = zero_point.dtype if zero_point is not None else output_dtype or DType.UINT8
    if output_dtype is not None and output_dtype != dtype:
        raise ShapeError(f"{op}: output_dtype {output_dtype.value} disagrees with the zero point's {dtype.value}")
    if dtype not in QUANTIZED:
        raise ShapeError(f"{op} quantizes to {_names(QUANTIZED)}, got {dtype.value}")
    return dtype


def _quantize_shape(x: TensorType, scale: TensorType, zero_point: TensorType | None = None, *, axis: int,
                    block_size: int, output_dtype: DType | None, saturate: int,
                    precision: DType | None) -> TensorType:
    if x.dtype not in SCALES | {DType.INT32}:
        raise ShapeError(f"QuantizeLinear takes float32, float16, bfloat16 or int32 x, got {x}")
    if scale.dtype not in SCALES | {DType.INT32}:
        raise ShapeError(f"QuantizeLinear: y_scale must be float32, float16, bfloat16 or int32, got {scale}")
    if precision is not None and precision not in SCALES | {DType.INT32}:
        raise ShapeError(f"QuantizeLinear: precision must be float32, float16, bfloat16 or int32, got "
                         f"{precision.value}")
    dtype = quantized_type("QuantizeLinear", zero_point, output_dtype)
    check_parameter("QuantizeLinear", "y_scale", scale, x, axis, block_size)
    if zero_point is not None and not same_placement(zero_point, scale):
        raise ShapeError(f"QuantizeLinear: y_zero_point {zero_point} must have y_scale {scale}'s shape")
    return TensorType(x.shape, dtype)


@declare("QuantizeLinear", QuantizeLinearAttrs, inputs=("x", "y_scale", "y_zero_point?"), outputs=("y",),
         shape=_quantize_shape, flops=per_output(3))
def QuantizeLinear(x, scale, zero_point=None, *, axis, block_size, output_dtype, saturate, precision):
    """saturate(round(x / y_scale) + y_zero_point), halves to even, per tensor, axis or block."""
    dtype = DType.of(zero_point.dtype) if zero_point is not None else output_dtype or DType.UINT8
    scale = expand(scale, x.shape, axis, block_size)
    zero = 0 if zero_point is None else expand(zero_point, x.shape, axis, block_size)
    return quantize_values(x, scale, zero, dtype, precision, saturate)


# -- DequantizeLinear ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DequantizeLinearAttrs:
    """`output_dtype` (opset 23) names y's type, which is otherwise the scale's."""

    axis: int = 1
    block_size: int = 0
    output_dtype: DType | None = None


def _dequantize_shape(x: TensorType, scale: TensorType, zero_point: TensorType | None = None, *, axis: int,
                      block_size: int, output_dtype: DType | None) -> TensorType:
    if x.dtype not in QUANTIZED | {DType.INT32}:
        raise ShapeError(f"DequantizeLinear takes {_names(QUANTIZED | {DType.INT32})} x, got {x}")
    if scale.dtype not in SCALES:
        raise ShapeError(f"DequantizeLinear: x_scale must be float32, float16 or bfloat16, got {scale}")
    if zero_point is not None and zero_point.dtype != x.dtype:
        raise ShapeError(f"DequantizeLinear: x_zero_point {zero_point} must be of x {x}'s type")
    if output_dtype is not None and output_dtype not in SCALES:
        raise ShapeError(f"DequantizeLinear: output_dtype must be float32, float16 or bfloat16, got "
                         f"{output_dtype.value}")
    check_parameter("DequantizeLinear", "x_scale", scale, x, axis, block_size)
    if zero_point is not None and not same_placement(zero_point, scale):
        raise ShapeError(f"DequantizeLinear: x_zero_point {zero_point} must have x_scale {scale}'s shape")
    return TensorType(x.shape, output_dtype or scale.dtype)


@declare("DequantizeLinear", DequantizeLinearAttrs, inputs=("x", "x_scale", "x_zero_point?"), outputs=("y",),
         shape=_dequantize_shape, flops=per_output(2))
def DequantizeLinear(x, scale, zero_point=None, *, axis, block_size, output_dtype):
    """(x - x_zero_point) * x_scale, per tensor, axis or block; the difference is exact in int64, or
    for float8 and float4 x (held in their own type) in float32, which holds every one of them."""
    wide = np.float32 if is_floating(x.dtype) else np.int64
    shifted = x.astype(wide)
    if zero_point is not None:
        shifted = shifted - expand(zero_point, x.shape, axis, block_size).astype(wide)
    scale = expand(scale, x.shape, axis, block_size)
    return (shifted.astype(scale.dtype) * scale).astype(scale.dtype, copy=False)


# -- DynamicQuantizeLinear -----------------------------------------------------------------------


def dynamic_range(low: float, high: float) -> tuple[np.float32, np.float32]:
    """(scale, zero point) of DynamicQuantizeLinear from x's min and max, in float32 as the spec types them:
    the range is widened to hold 0, scale = (max - min) / 255 (1/255 for an all-zero x, whose range is
    empty), and the zero point is 0 - min / scale saturated to [0, 255] and rounded half to even."""
    high, low = np.float32(max(0.0, high)), np.float32(min(0.0, low))
    scale = np.float32(1.0 if high == low else high - low) / np.float32(255)
    zero = np.rint(np.clip(np.float32(0) - low / scale, 0, 255)).astype(np.float32)
    return scale, zero


def _dynamic_shape(x: TensorType) -> tuple[TensorType, TensorType, TensorType]:
    if x.dtype is not DType.FLOAT32:
        raise ShapeError(f"DynamicQuantizeLinear takes float32 x, got {x}")
    return TensorType(x.shape, DType.UINT8), TensorType((), DType.FLOAT32), TensorType((), DType.UINT8)


def _dynamic_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    """A min and a max over x, then a quantize (a divide, a round, an add) per element."""
    return 5 * math.prod(inputs[0].shape)


@declare("DynamicQuantizeLinear", inputs=("x",), outputs=("y", "y_scale", "y_zero_point"), shape=_dynamic_shape,
         flops=_dynamic_flops)
def DynamicQuantizeLinear(x):
    """x quantized to uint8 with the scale and zero point that map [min(x, 0), max(x, 0)] onto [0, 255]."""
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    scale, zero = dynamic_range(low, high)
    return quantize_values(x, scale, zero, DType.UINT8), np.asarray(scale), np.asarray(zero.astype(np.uint8))
