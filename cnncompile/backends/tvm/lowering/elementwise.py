"""Element-wise ops: activations, broadcasting arithmetic, casts, and ChannelAffine.

Activations, arithmetic and ChannelAffine also run on values stored in a layout: operands
in one layout share one logical shape (the op's declaration says so), so their physical
elements line up and the kernel works on the physical shape; ChannelAffine reads its
logical per-channel scale and shift at each element's logical channel.
"""

from __future__ import annotations

import functools
import operator

from tvm import te, tirx

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering
from cnncompile.backends.tvm.lowering.activations import UNARY, Scalar, activation
from cnncompile.backends.tvm.lowering.common import broadcast_read, const, dtype_of, elementwise, is_float, widen
from cnncompile.backends.tvm.lowering.layouts import logical_index, physical_shape
from cnncompile.ops import elementwise as ew
from cnncompile.ops.fused import ChannelAffine
from cnncompile.ops.registry import OpDef


def _unary(scalar: Scalar) -> Lowering:
    def build(call: Call) -> Kernel:
        (x,) = call.inputs
        return Kernel([te.compute(x.shape, lambda *i: scalar(x[i], call.attrs), name="y")], KernelKind.INJECTIVE)

    return Lowering(build)


def _binary(combine) -> Lowering:
    def build(call: Call) -> Kernel:
        y = elementwise(physical_shape(call.out_types[0]), call.inputs, combine, "y")
        return Kernel([y], KernelKind.INJECTIVE)

    return Lowering(build)


def _divide(a: tirx.Expr, b: tirx.Expr) -> tirx.Expr:
    """Integer quotients truncate toward zero, as the reference (and C) divides."""
    return a / b if is_float(dtype_of(a)) else tirx.truncdiv(a, b)


def _prelu(x: tirx.Expr, slope: tirx.Expr) -> tirx.Expr:
    return tirx.Select(x >= const(0, dtype_of(x)), x, slope * x)


def _add_all(*values: tirx.Expr) -> tirx.Expr:
    return functools.reduce(operator.add, values)


def _sum(call: Call) -> Kernel:
    return Kernel([elementwise(physical_shape(call.out_types[0]), call.inputs, _add_all, "y")], KernelKind.INJECTIVE)


def _cast(call: Call) -> Kernel:
    """A float becomes an integer by truncation toward zero (LLVM's fptosi), anything becomes bool as `!= 0`."""
    (x,) = call.inputs
    to = call.attrs.to.value

    def convert(*i):
        return x[i] != const(0, x.dtype) if to == "bool" else x[i].astype(to)

    return Kernel([te.compute(x.shape, convert, name="y")], KernelKind.INJECTIVE)


def _identity(call: Call) -> Kernel:
    (x,) = call.inputs
    return Kernel([te.compute(x.shape, lambda *i: x[i], name="y")], KernelKind.INJECTIVE)


def _dropout(call: Call) -> Kernel:
    """Inference dropout: the data unchanged and an all-True mask (training mode is refused by the shape rule)."""
    (x,) = call.inputs
    data = te.compute(x.shape, lambda *i: x[i], name="y")
    mask = te.compute(x.shape, lambda *i: tirx.const(True, "bool"), name="mask")
    return Kernel([data, mask], KernelKind.INJECTIVE)


def _channel_affine(call: Call) -> Kernel:
    x, scale, shift = call.inputs
    attrs = call.attrs
    layout = call.in_types[0].layout

    store = call.out_types[0].dtype.value

    def affine(*i):
        """In the parameters' type (float32 for a 16-bit X, which is widened as read), rounded once on store."""
        logical = logical_index(layout, i)
        y = widen(x[i], scale.dtype) * broadcast_read(scale, logical) + broadcast_read(shift, logical)
        return widen(activation(y, attrs.activation, attrs.activation_attrs), store)

    return Kernel([te.compute(x.shape, affine, name="y")], KernelKind.INJECTIVE)


LOWERINGS: dict[OpDef, Lowering] = {
    **{op: _unary(scalar) for op, scalar in UNARY.items()},
    ew.PRelu: _binary(_prelu),
    ew.Add: _binary(lambda a, b: a + b),
    ew.Sub: _binary(lambda a, b: a - b),
    ew.Mul: _binary(lambda a, b: a * b),
    ew.Div: _binary(_divide),
    ew.Sum: Lowering(_sum),
    ew.Cast: Lowering(_cast),
    ew.Identity: Lowering(_identity),
    ew.Dropout: Lowering(_dropout),
    ChannelAffine: Lowering(_channel_affine),
}
