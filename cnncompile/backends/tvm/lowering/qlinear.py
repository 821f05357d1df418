"""Integer products and convolutions (ops/qlinear.py) as TE: an int32 reduction over the shifted
operands (x - zero point, widened to int32 before the product), then, for the QLinear ops, the
float32 requantize the reference makes.

MatMulInteger and QLinearMatMul are GEMM kernels (their reduction stage is `gemm`, loops ending in
(i, j) as the GEMM schedules tile them); ConvInteger and QLinearConv are one direct reduction over
(channels, window) on the padded shifted input (padding 0 after the shift: the zero point before),
a REDUCE kernel the generic CPU schedule and dlight's reduction rules take. These are the
definitions, not tuned int8 kernels (VNNI dot products, dp4a): those come with int8 plans.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import GEMM_STAGE, Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import broadcast_read, widen
from cnncompile.backends.tvm.lowering.layouts import pad_spatial
from cnncompile.backends.tvm.lowering.linalg import matmul_indices
from cnncompile.backends.tvm.lowering.quantize import QUOTIENT, saturated
from cnncompile.ops import qlinear
from cnncompile.ops.conv import conv_window
from cnncompile.ops.registry import OpDef, attr_dict

ACC = "int32"
Read = Callable[..., tirx.Expr]


def _one(param: te.Tensor) -> tirx.Expr:
    return param[(0,) * len(shape_of(param))]


def _per(param: te.Tensor | None, position: Callable[..., tirx.Expr | None]) -> Read:
    """A zero point or scale read as one value, or (1-D) by what `position` picks of the index; a
    missing zero point reads as 0."""
    if param is None:
        return lambda *index: tirx.const(0, ACC)
    if int(np.prod(shape_of(param))) == 1:
        return lambda *index: _one(param)
    if len(shape_of(param)) == 1:
        return lambda *index: param[position(*index)]
    return lambda *index: broadcast_read(param, index)


def _product(a: te.Tensor, b: te.Tensor, a_zero: Read, b_zero: Read, out_shape: tuple[int, ...]) -> te.Tensor:
    """sum_k (a - a_zero)(b - b_zero) in int32, batch dims broadcast as NumPy's matmul; a 1-D operand is a
    vector (a row of A, a column of B)."""
    a_shape, b_shape = shape_of(a), shape_of(b)
    k = te.reduce_axis((0, a_shape[-1]), name="k")

    def product(*index):
        a_index, b_index = matmul_indices(a_shape, b_shape, index, k)
        left = broadcast_read(a, a_index).astype(ACC) - a_zero(*a_index).astype(ACC)
        right = broadcast_read(b, b_index).astype(ACC) - b_zero(*b_index).astype(ACC)
        return te.sum(left * right, axis=k)

    return te.compute(out_shape, product, name=GEMM_STAGE)


def _row(*index):
    return index[-2]


def _column(*index):
    return index[-1]


def _matmul_integer(call: Call) -> Kernel:
    a, b, *zeros = call.inputs
    a_zero = _per(zeros[0] if zeros else None, _row)
    b_zero = _per(zeros[1] if len(zeros) > 1 else None, _column)
    return Kernel([_product(a, b, a_zero, b_zero, call.out_types[0].shape)], KernelKind.GEMM)


def _scale(*scales: tirx.Expr, divisor: tirx.Expr) -> tirx.Expr:
    """(s1 * s2 * ...) / divisor in float32, in the reference's order."""
    product = widen(scales[0], QUOTIENT)
    for s in scales[1:]:
        product = product * widen(s, QUOTIENT)
    return product / widen(divisor, QUOTIENT)


def _requantized(acc: tirx.Expr, multiplier: tirx.Expr, zero_point: tirx.Expr, call: Call) -> tirx.Expr:
    return saturated(tirx.nearbyint(acc.astype(QUOTIENT) * multiplier), zero_point, call.out_types[0].dtype)


def _qlinear_matmul(call: Call) -> Kernel:
    a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero = call.inputs
    out_shape = call.out_types[0].shape
    acc = _product(a, b, _per(a_zero, _row), _per(b_zero, _column), out_shape)
    read_b_scale, read_y_scale, read_y_zero = (_per(p, _column) for p in (b_scale, y_scale, y_zero))

    def finish(*index):
        multiplier = _scale(_one(a_scale), read_b_scale(*index), divisor=read_y_scale(*index))
        return _requantized(acc[index], multiplier, read_y_zero(*index), call)

    return Kernel([te.compute(out_shape, finish, name="y")], KernelKind.GEMM)


def _integer_conv(call: Call, op: str, x: te.Tensor, w: te.Tensor, x_zero: te.Tensor | None,
                  w_zero: te.Tensor | None) -> te.Tensor:
    """conv(x - x_zero, w - w_zero) in int32 over the window; w's zero point per tensor or output channel."""
    attrs = attr_dict(call.attrs)
    x_shape, w_shape = shape_of(x), shape_of(w)
    window = conv_window(x_shape, w_shape, attrs, op)
    read_x_zero = _per(x_zero, lambda *i: 0)
    read_w_zero = _per(w_zero, lambda o, *rest: o)
    shifted_x = te.compute(x_shape, lambda *i: x[i].astype(ACC) - read_x_zero(*i).astype(ACC), name="x_shifted")
    padded = pad_spatial(shifted_x, None, window.pads_begin, window.pads_end, tirx.const(0, ACC))
    group_in, group_out = w_shape[1], w_shape[0] // attrs["group"]
    rc = te.reduce_axis((0, group_in), name="rc")
    rk = [te.reduce_axis((0, k), name=f"rk{d}") for d, k in enumerate(window.kernel)]

    def conv(n, o, *pixel):
        channel = (o // group_out) * group_in + rc
        source = (n, channel, *(p * s + r * d for p, s, r, d in zip(pixel, window.strides, rk, window.dilations)))
        weight = w[(o, rc, *rk)].astype(ACC) - read_w_zero(o).astype(ACC)
        return te.sum(padded[source] * weight, axis=[rc, *rk])

    return te.compute(call.out_types[0].shape, conv, name="conv")


def _conv_integer(call: Call) -> Kernel:
    x, w, *zeros = call.inputs
    conv = _integer_conv(call, "ConvInteger", x, w, zeros[0] if zeros else None, zeros[1] if len(zeros) > 1 else None)
    return Kernel([conv], KernelKind.REDUCE)


def _qlinear_conv(call: Call) -> Kernel:
    x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, *bias = call.inputs
    acc = _integer_conv(call, "QLinearConv", x, w, x_zero, w_zero)
    read_w_scale = _per(w_scale, lambda o: o)

    def finish(n, o, *pixel):
        total = acc[(n, o, *pixel)] + (bias[0][o] if bias else tirx.const(0, ACC))
        multiplier = _scale(_one(x_scale), read_w_scale(o), divisor=_one(y_scale))
        return _requantized(total, multiplier, _one(y_zero), call)

    return Kernel([te.compute(call.out_types[0].shape, finish, name="y")], KernelKind.REDUCE)


LOWERINGS: dict[OpDef, Lowering] = {
    qlinear.MatMulInteger: Lowering(_matmul_integer),
    qlinear.QLinearMatMul: Lowering(_qlinear_matmul),
    qlinear.ConvInteger: Lowering(_conv_integer),
    qlinear.QLinearConv: Lowering(_qlinear_conv),
}

