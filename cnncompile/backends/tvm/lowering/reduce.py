"""Reductions along axes: Softmax, LogSoftmax, ReduceMean, and the helper the norms share."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from tvm import te, tirx

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import const
from cnncompile.ops import reduce as reduce_ops
from cnncompile.ops.registry import OpDef


def reduce_axes(source: Callable[..., tirx.Expr], shape: Sequence[int], axes: Sequence[int], reducer,
                name: str, keepdims: bool = True) -> te.Tensor:
    """reducer over `axes` of `source` (a function of a full index of `shape`).

    With keepdims the reduced axes stay as size 1, so the result broadcasts back against
    the input; without, they are dropped.
    """
    axes = sorted(axes)
    rk = {a: te.reduce_axis((0, shape[a]), name=f"rk{a}") for a in axes}
    kept = [a for a in range(len(shape)) if a not in rk]
    out_shape = [1 if a in rk else d for a, d in enumerate(shape)] if keepdims else [shape[a] for a in kept]

    def compute(*index):
        spatial = iter(index[a] for a in kept) if keepdims else iter(index)
        full = [rk[a] if a in rk else next(spatial) for a in range(len(shape))]
        return reducer(source(*full), axis=list(rk.values()))

    return te.compute(tuple(out_shape), compute, name=name)


def keep_index(index: Sequence[tirx.Expr], axes: Sequence[int]) -> tuple:
    """The index of a keepdims reduction's result that element `index` of its input reads."""
    return tuple(0 if a in axes else i for a, i in enumerate(index))


def _softmax(call: Call, log: bool) -> Kernel:
    (x,) = call.inputs
    shape = shape_of(x)
    axis = call.attrs.axis % len(shape)
    peak = reduce_axes(lambda *i: x[i], shape, [axis], te.max, "max")

    def shifted(*i):
        return x[i] - peak[keep_index(i, [axis])]

    total = reduce_axes(lambda *i: tirx.exp(shifted(*i)), shape, [axis], te.sum, "sum")
    if log:
        out = te.compute(shape, lambda *i: shifted(*i) - tirx.log(total[keep_index(i, [axis])]), name="y")
    else:
        out = te.compute(shape, lambda *i: tirx.exp(shifted(*i)) / total[keep_index(i, [axis])], name="y")
    return Kernel([out], KernelKind.REDUCE)


def _reduce_mean(call: Call) -> Kernel:
    (x,) = call.inputs
    shape = shape_of(x)
    attrs = call.attrs
    axes = reduce_ops._reduced_axes(len(shape), attrs.axes, attrs.noop_with_empty_axes, "ReduceMean")
    total = reduce_axes(lambda *i: x[i], shape, axes, te.sum, "sum", keepdims=bool(attrs.keepdims))
    count = const(math.prod(shape[a] for a in axes), x.dtype)
    return Kernel([te.compute(shape_of(total), lambda *i: total[i] / count, name="y")], KernelKind.REDUCE)


LOWERINGS: dict[OpDef, Lowering] = {
    reduce_ops.Softmax: Lowering(lambda call: _softmax(call, log=False)),
    reduce_ops.LogSoftmax: Lowering(lambda call: _softmax(call, log=True)),
    reduce_ops.ReduceMean: Lowering(_reduce_mean),
}
