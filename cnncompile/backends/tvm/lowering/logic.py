"""Element-wise logic (ops/logic.py) as scalar TIR: comparisons, Where, boolean and bitwise ops.

A shift by the type's width or more is undefined in LLVM and CUDA, and gives 0 in the
reference (NumPy), so BitShift selects 0 there explicitly.
"""

from __future__ import annotations

from collections.abc import Callable

import tvm
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering
from cnncompile.backends.tvm.lowering.common import const, dtype_of, elementwise
from cnncompile.backends.tvm.lowering.layouts import physical_shape
from cnncompile.ops import logic as lg
from cnncompile.ops.registry import OpDef


def _broadcasting(combine: Callable[..., tirx.Expr]) -> Lowering:
    def build(call: Call) -> Kernel:
        y = elementwise(physical_shape(call.out_types[0]), call.inputs, combine, "y")
        return Kernel([y], KernelKind.INJECTIVE)

    return Lowering(build)


def _unary(scalar: Callable[[tirx.Expr], tirx.Expr]) -> Lowering:
    def build(call: Call) -> Kernel:
        (x,) = call.inputs
        return Kernel([te.compute(x.shape, lambda *i: scalar(x[i]), name="y")], KernelKind.INJECTIVE)

    return Lowering(build)


def _as_int8(compare: Callable[[tirx.Expr, tirx.Expr], tirx.Expr]) -> Callable[..., tirx.Expr]:
    """`compare` with bool operands widened to int8: TVM's LLVM codegen emits a float compare for bools."""

    def widened(a: tirx.Expr, b: tirx.Expr) -> tirx.Expr:
        if dtype_of(a) == "bool":
            a, b = a.astype("int8"), b.astype("int8")
        return compare(a, b)

    return widened


def _bit_shift(call: Call) -> Kernel:
    shift = tirx.shift_left if call.attrs.direction is lg.ShiftDirection.LEFT else tirx.shift_right

    def shifted(x: tirx.Expr, y: tirx.Expr) -> tirx.Expr:
        width = const(tvm.DataType(dtype_of(x)).bits, dtype_of(y))
        return tirx.Select(y >= width, const(0, dtype_of(x)), shift(x, y))

    y = elementwise(physical_shape(call.out_types[0]), call.inputs, shifted, "y")
    return Kernel([y], KernelKind.INJECTIVE)


LOWERINGS: dict[OpDef, Lowering] = {
    lg.Equal: _broadcasting(_as_int8(lambda a, b: a == b)),
    lg.Less: _broadcasting(lambda a, b: a < b),
    lg.Greater: _broadcasting(lambda a, b: a > b),
    lg.LessOrEqual: _broadcasting(lambda a, b: a <= b),
    lg.GreaterOrEqual: _broadcasting(lambda a, b: a >= b),
    lg.Where: _broadcasting(tirx.Select),
    lg.And: _broadcasting(tirx.And),
    lg.Or: _broadcasting(tirx.Or),
    lg.Xor: _broadcasting(_as_int8(lambda a, b: a != b)),
    lg.Not: _unary(tirx.Not),
    lg.BitwiseAnd: _broadcasting(tirx.bitwise_and),
    lg.BitwiseOr: _broadcasting(tirx.bitwise_or),
    lg.BitwiseXor: _broadcasting(tirx.bitwise_xor),
    lg.BitwiseNot: _unary(tirx.bitwise_not),
    lg.BitShift: Lowering(_bit_shift),
}
