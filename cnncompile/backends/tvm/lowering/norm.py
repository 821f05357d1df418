"""Normalizations: BatchNormalization (inference), LayerNormalization, InstanceNormalization, LRN.

Each transcribes its reference kernel (ops/norm.py): statistics are reductions with the
reduced axes kept as size 1, and the normalized output reads them back by broadcasting.
"""

from __future__ import annotations

import math

from tvm import te, tirx

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import broadcast_read, const
from cnncompile.backends.tvm.lowering.reduce import keep_index, reduce_axes
from cnncompile.ops import norm as norm_ops
from cnncompile.ops.registry import OpDef


def _batch_norm(call: Call) -> Kernel:
    """Y = X * a + (B - mean * a), a = scale / sqrt(var + epsilon), statistics per channel (or per position)."""
    x, scale, shift, mean, var = call.inputs
    stats = shape_of(scale)
    eps = const(call.attrs.epsilon, x.dtype)
    a = te.compute(stats, lambda *i: scale[i] / tirx.sqrt(var[i] + eps), name="a")
    offset = te.compute(stats, lambda *i: shift[i] - mean[i] * a[i], name="offset")

    def normalize(*i):
        where = i[1:1 + len(stats)]
        return x[i] * a[where] + offset[where]

    return Kernel([te.compute(shape_of(x), normalize, name="y")], KernelKind.INJECTIVE)


def _moments(x: te.Tensor, axes: list[int]) -> tuple[te.Tensor, te.Tensor]:
    """Mean and (biased) variance over `axes`, kept as size-1 dims; the variance is of the centred values."""
    shape = shape_of(x)
    count = const(math.prod(shape[a] for a in axes), x.dtype)
    total = reduce_axes(lambda *i: x[i], shape, axes, te.sum, "sum")
    mean = te.compute(shape_of(total), lambda *i: total[i] / count, name="mean")

    def squared(*i):
        centred = x[i] - mean[keep_index(i, axes)]
        return centred * centred

    square_sum = reduce_axes(squared, shape, axes, te.sum, "square_sum")
    variance = te.compute(shape_of(square_sum), lambda *i: square_sum[i] / count, name="variance")
    return mean, variance


def _layer_norm(call: Call) -> Kernel:
    x, scale, *rest = call.inputs
    shape = shape_of(x)
    axes = list(range(call.attrs.axis % len(shape), len(shape)))
    mean, variance = _moments(x, axes)
    eps = const(call.attrs.epsilon, x.dtype)
    inv_std = te.compute(shape_of(variance), lambda *i: const(1, x.dtype) / tirx.sqrt(variance[i] + eps),
                         name="inv_std")

    def normalize(*i):
        stats = keep_index(i, axes)
        y = (x[i] - mean[stats]) * inv_std[stats] * broadcast_read(scale, i)
        return y + broadcast_read(rest[0], i) if rest else y

    y = te.compute(shape, normalize, name="y")
    return Kernel([y, _cast(mean, call.out_types[1].dtype.value), _cast(inv_std, call.out_types[2].dtype.value)],
                  KernelKind.REDUCE)


def _cast(stat: te.Tensor, dtype: str) -> te.Tensor:
    """A statistic output in its declared (stash) dtype."""
    return te.compute(shape_of(stat), lambda *i: stat[i].astype(dtype), name=f"{stat.op.name}_out")


def _instance_norm(call: Call) -> Kernel:
    x, scale, shift = call.inputs
    shape = shape_of(x)
    axes = list(range(2, len(shape)))
    mean, variance = _moments(x, axes)
    eps = const(call.attrs.epsilon, x.dtype)

    def normalize(n, c, *p):
        stats = (n, c, *(0 for _ in p))
        centred = x[(n, c, *p)] - mean[stats]
        return centred / tirx.sqrt(variance[stats] + eps) * scale[c] + shift[c]

    return Kernel([te.compute(shape, normalize, name="y")], KernelKind.REDUCE)


def _lrn(call: Call) -> Kernel:
    """X / (bias + alpha / size * sum of X^2 over channels c - floor((size-1)/2) .. c + ceil((size-1)/2))^beta."""
    (x,) = call.inputs
    shape = shape_of(x)
    a = call.attrs
    below = (a.size - 1) // 2
    r = te.reduce_axis((0, a.size), name="r")

    def square_sum(n, c, *p):
        channel = c - below + r
        inside = tirx.all(channel >= 0, channel < shape[1])
        value = tirx.if_then_else(inside, x[(n, channel, *p)], const(0, x.dtype))
        return te.sum(value * value, axis=r)

    sums = te.compute(shape, square_sum, name="square_sum")

    def normalize(*i):
        base = const(a.bias, x.dtype) + const(a.alpha / a.size, x.dtype) * sums[i]
        return x[i] / tirx.power(base, const(a.beta, x.dtype))

    return Kernel([te.compute(shape, normalize, name="y")], KernelKind.REDUCE)


LOWERINGS: dict[OpDef, Lowering] = {
    norm_ops.BatchNormalization: Lowering(_batch_norm),
    norm_ops.LayerNormalization: Lowering(_layer_norm),
    norm_ops.InstanceNormalization: Lowering(_instance_norm),
    norm_ops.LRN: Lowering(_lrn),
}
