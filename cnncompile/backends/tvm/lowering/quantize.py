"""Linear quantization (ops/quantize.py) as TE: QuantizeLinear and DequantizeLinear element-wise, each
element reading its scale and zero point per tensor, per axis or per block; DynamicQuantizeLinear as
a min and max over x, the scalar scale and zero point from them, then the quantize.

The quotient is computed in float32 (of x and the scale rounded to a 16-bit `precision`, then
rounded to it), rounded by nearbyint (half to even in the default rounding mode, as NumPy's rint),
the zero point added and the sum saturated in float32, whose integers are exact up to 2^24, beyond
every quantized type's range: the same steps as the reference, so the kernel and the reference agree
to the bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tvm import te, tirx, topi

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import const, widen
from cnncompile.ir.types import DType
from cnncompile.ops import quantize as q
from cnncompile.ops.registry import OpDef

QUOTIENT = "float32"
Read = Callable[[Sequence[tirx.Expr]], tirx.Expr]


def parameter(param: te.Tensor, rank: int, axis: int, block_size: int) -> Read:
    """How element `index` of x reads a scale or zero point: its one value, its entry along `axis`,
    or its entry for the block holding index[axis]."""
    shape = shape_of(param)
    if block_size == 0 and (not shape or shape == (1,)):
        return lambda index: param[(0,) * len(shape)]
    a = axis % rank
    if block_size == 0:
        return lambda index: param[index[a]]
    return lambda index: param[tuple(i // block_size if d == a else i for d, i in enumerate(index))]


def saturated(rounded: tirx.Expr, zero_point: tirx.Expr, dtype: DType) -> tirx.Expr:
    """rounded + zero_point clamped to `dtype`'s range (in float32) and converted to it."""
    low, high = q.integer_range(dtype)
    total = rounded + widen(zero_point, QUOTIENT)
    return tirx.max(tirx.min(total, const(high, QUOTIENT)), const(low, QUOTIENT)).astype(dtype.value)


def rounded(value: tirx.Expr, precision: DType) -> tirx.Expr:
    """A float32 `value` rounded to the 16-bit `precision` (half to even), kept in float32. TVM drops a
    float32 -> bfloat16 -> float32 cast pair as a no-op, so bfloat16 rounds on the bits: add 0x7FFF plus
    the lowest kept bit, clear the 16 bits bfloat16 drops (finite values; an overflow becomes inf)."""
    if precision is DType.FLOAT16:
        return value.astype("float16").astype(QUOTIENT)
    bits = tirx.reinterpret("uint32", value)
    lowest_kept = (bits >> tirx.const(16, "uint32")) & tirx.const(1, "uint32")
    kept = (bits + tirx.const(0x7FFF, "uint32") + lowest_kept) & tirx.const(0xFFFF0000, "uint32")
    return tirx.reinterpret(QUOTIENT, kept)


def quantized(x: tirx.Expr, scale: tirx.Expr, zero_point: tirx.Expr | int, dtype: DType,
              precision: DType | None) -> tirx.Expr:
    x, scale = widen(x, QUOTIENT), widen(scale, QUOTIENT)
    quotient = x / scale
    if precision is not None and precision.is_reduced:
        quotient = rounded(rounded(x, precision) / rounded(scale, precision), precision)
    zero = const(zero_point, QUOTIENT) if isinstance(zero_point, int) else zero_point
    return saturated(tirx.nearbyint(quotient), zero, dtype)


def _quantize(call: Call) -> Kernel:
    x, scale, *rest = call.inputs
    attrs, shape = call.attrs, shape_of(x)
    read_scale = parameter(scale, len(shape), attrs.axis, attrs.block_size)
    read_zero = parameter(rest[0], len(shape), attrs.axis, attrs.block_size) if rest else (lambda index: 0)
    dtype = call.out_types[0].dtype
    y = te.compute(shape, lambda *i: quantized(x[i], read_scale(i), read_zero(i), dtype, attrs.precision),
                   name="y")
    return Kernel([y], KernelKind.INJECTIVE)


def _dequantize(call: Call) -> Kernel:
    """(x - zero_point) in int32 (int64 for an int32 x, which its zero point could overflow), times the
    scale in float32 (the accumulator of a 16-bit scale), rounded once on store."""
    x, scale, *rest = call.inputs
    attrs, shape = call.attrs, shape_of(x)
    read_scale = parameter(scale, len(shape), attrs.axis, attrs.block_size)
    read_zero = parameter(rest[0], len(shape), attrs.axis, attrs.block_size) if rest else None
    out = call.out_types[0].dtype
    wide = "int64" if call.in_types[0].dtype is DType.INT32 else "int32"
    compute = out.accumulator.value

    def element(*index):
        difference = x[index].astype(wide)
        if read_zero is not None:
            difference = difference - read_zero(index).astype(wide)
        return (difference.astype(compute) * widen(read_scale(index), compute)).astype(out.value)

    return Kernel([te.compute(shape, element, name="y")], KernelKind.INJECTIVE)


def _dynamic_quantize(call: Call) -> Kernel:
    """min and max over x (widened to hold 0), scale = (max - min) / 255 (1/255 when they meet), zero point
    = rint(saturate(-min / scale)), then the quantize: ops.quantize.dynamic_range's steps in float32."""
    (x,) = call.inputs
    shape = shape_of(x)
    zero = const(0, QUOTIENT)
    low = topi.min(x, axis=None, keepdims=True)
    high = topi.max(x, axis=None, keepdims=True)
    origin = (0,) * len(shape)

    def scale_of():
        lo, hi = tirx.min(low[origin], zero), tirx.max(high[origin], zero)
        return tirx.Select(hi == lo, const(1, QUOTIENT), hi - lo) / const(255, QUOTIENT)

    scale = te.compute((), scale_of, name="y_scale")

    def zero_of():
        lo = tirx.min(low[origin], zero)
        shifted = zero - lo / scale[()]
        return tirx.nearbyint(tirx.max(tirx.min(shifted, const(255, QUOTIENT)), zero))

    zero_point = te.compute((), zero_of, name="zero_point")
    y = te.compute(shape, lambda *i: saturated(tirx.nearbyint(x[i] / scale[()]), zero_point[()], DType.UINT8),
                   name="y")
    stored_zero = te.compute((), lambda: zero_point[()].astype("uint8"), name="y_zero_point")
    return Kernel([y, scale, stored_zero], KernelKind.REDUCE)


LOWERINGS: dict[OpDef, Lowering] = {
    q.QuantizeLinear: Lowering(_quantize),
    q.DequantizeLinear: Lowering(_dequantize),
    q.DynamicQuantizeLinear: Lowering(_dynamic_quantize),
}
