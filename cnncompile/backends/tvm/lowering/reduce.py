"""Reductions: Softmax, LogSoftmax, the ReduceX family (topi's reductions), CumSum, CumProd, LpNormalization,
and the helper the norms share."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tvm import te, tirx, topi

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import PRODUCT, const, dtype_of, is_float
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
    return Kernel([softmax(x, call.attrs.axis % len(shape_of(x)), log)], KernelKind.REDUCE)


def softmax(x: te.Tensor, axis: int, log: bool = False, name: str = "y") -> te.Tensor:
    """(Log)softmax of `x` along `axis`, shifted by the max so the largest term is exp(0); Attention's
    lowering reuses it."""
    shape = shape_of(x)
    peak = reduce_axes(lambda *i: x[i], shape, [axis], te.max, "max")

    def shifted(*i):
        return x[i] - peak[keep_index(i, [axis])]

    total = reduce_axes(lambda *i: tirx.exp(shifted(*i)), shape, [axis], te.sum, "sum")
    if log:
        return te.compute(shape, lambda *i: shifted(*i) - tirx.log(total[keep_index(i, [axis])]), name=name)
    return te.compute(shape, lambda *i: tirx.exp(shifted(*i)) / total[keep_index(i, [axis])], name=name)


def _keepdims_to_out(kept: te.Tensor, shape: Sequence[int], axes: Sequence[int], keepdims: bool,
                     finish: Callable[[tirx.Expr], tirx.Expr]) -> te.Tensor:
    """The op's output from a keepdims reduction: `finish` applied, the reduced dims dropped unless keepdims."""
    if keepdims:
        return te.compute(shape_of(kept), lambda *i: finish(kept[i]), name="y")
    kept_axes = [a for a in range(len(shape)) if a not in axes]
    out_shape = [shape[a] for a in kept_axes]
    if not out_shape:
        # A scalar: finished as a sum of its one term, since dlight's Reduction rule fails (a TIR check,
        # not a refusal) on a reduction to a scalar followed by an element-wise stage.
        one = te.reduce_axis((0, 1), name="one")
        return te.compute((), lambda: te.sum(finish(kept[(one,) * len(shape)]), axis=one), name="y")

    def read(*index):
        spatial = dict(zip(kept_axes, index))
        return finish(kept[tuple(spatial.get(a, 0) for a in range(len(shape)))])

    return te.compute(tuple(out_shape), read, name="y")


def _in_float(finish: Callable[[tirx.Expr], tirx.Expr], dtype: str) -> Callable[[tirx.Expr], tirx.Expr]:
    """`finish` (sqrt, log) computed in float64 for an integer input and truncated back, as the reference does."""
    if is_float(dtype):
        return finish
    return lambda value: finish(value.astype("float64")).astype(dtype)


def _divide(total: tirx.Expr, count: int) -> tirx.Expr:
    """total / count; integers truncate towards zero, as the reference's cast of NumPy's mean does."""
    dtype = dtype_of(total)
    return total / const(count, dtype) if is_float(dtype) else tirx.truncdiv(total, const(count, dtype))


@dataclass(frozen=True)
class Reduction:
    """A ReduceX op as TE: `element` maps each input element, topi's `reducer` combines them over the axes,
    `finish` maps each result (given the reduced count, for the mean)."""

    reducer: Callable[..., te.Tensor]
    element: Callable[[tirx.Expr], tirx.Expr] = lambda v: v
    finish: Callable[[tirx.Expr, int], tirx.Expr] = lambda v, count: v
    float_finish: bool = False  # finish is sqrt or log: integers go through float64


REDUCTIONS: dict[OpDef, Reduction] = {
    reduce_ops.ReduceSum: Reduction(topi.sum),
    reduce_ops.ReduceMean: Reduction(topi.sum, finish=lambda v, count: _divide(v, count)),
    reduce_ops.ReduceProd: Reduction(topi.prod),
    reduce_ops.ReduceMax: Reduction(topi.max),
    reduce_ops.ReduceMin: Reduction(topi.min),
    reduce_ops.ReduceL1: Reduction(topi.sum, element=tirx.abs),
    reduce_ops.ReduceL2: Reduction(topi.sum, element=lambda v: v * v, finish=lambda v, _: tirx.sqrt(v),
                                   float_finish=True),
    reduce_ops.ReduceSumSquare: Reduction(topi.sum, element=lambda v: v * v),
    reduce_ops.ReduceLogSum: Reduction(topi.sum, finish=lambda v, _: tirx.log(v), float_finish=True),
}


def _reduce(op: OpDef, call: Call) -> Kernel:
    """element -> topi reduction over the axes (keepdims) -> finish; over no axes (noop), element and finish alone."""
    (x,) = call.inputs
    shape, dtype = shape_of(x), str(x.dtype)
    attrs = call.attrs
    reduction = REDUCTIONS[op]
    axes = reduce_ops.reduced_axes(len(shape), attrs.axes, attrs.noop_with_empty_axes, op.name)
    mapped = te.compute(shape, lambda *i: reduction.element(x[i]), name="element")
    kept = reduction.reducer(mapped, axis=list(axes), keepdims=True) if axes else mapped
    count = math.prod(shape[a] for a in axes)

    def finish(value: tirx.Expr) -> tirx.Expr:
        return reduction.finish(value, count)

    finish = _in_float(finish, dtype) if reduction.float_finish else finish
    return Kernel([_keepdims_to_out(kept, shape, axes, bool(attrs.keepdims), finish)], KernelKind.REDUCE)


def _reduce_log_sum_exp(call: Call) -> Kernel:
    """peak + log(sum(exp(x - peak))), shifted by the largest element as the reference is."""
    (x,) = call.inputs
    shape, dtype = shape_of(x), str(x.dtype)
    attrs = call.attrs
    axes = reduce_ops.reduced_axes(len(shape), attrs.axes, attrs.noop_with_empty_axes, "ReduceLogSumExp")
    wide = dtype if is_float(dtype) else "float64"
    if not axes:
        return Kernel([te.compute(shape, lambda *i: x[i], name="y")], KernelKind.REDUCE)
    peak = topi.max(x, axis=list(axes), keepdims=True)

    def shift(*index):
        value = peak[keep_index(index, axes)].astype(wide)
        return tirx.Select(tirx.isfinite(value), value, const(0, wide))

    total = reduce_axes(lambda *i: tirx.exp(x[i].astype(wide) - shift(*i)), shape, axes, te.sum, "sum")
    both = te.compute(shape_of(total), lambda *i: shift(*i) + tirx.log(total[i]), name="log_sum_exp")
    return Kernel([_keepdims_to_out(both, shape, axes, bool(attrs.keepdims), lambda v: v.astype(dtype))],
                  KernelKind.REDUCE)


def _scan(call: Call, op: OpDef) -> Kernel:
    """y[i] = the sum (CumSum) or product (CumProd) of x[j] over the j before i along the axis (inclusive
    unless exclusive, from the end if reverse).

    A masked reduction, not topi.cumsum/cumprod: topi's scan is an extern IR-builder kernel (its CPU form a
    parallel loop, its GPU form topi.gpu.cumsum's own thread binding) that neither our CPU templates
    nor dlight's rules schedule; a sum over the whole axis under a mask is an ordinary REDUCE
    kernel on both, at n^2 operations per axis of n, which CNN-sized axes afford.
    """
    (x,) = call.inputs
    shape = shape_of(x)
    attrs = call.attrs
    axis = reduce_ops.scan_axis(attrs.axis, len(shape), op.name)
    reducer, identity = (te.sum, 0) if op is reduce_ops.CumSum else (PRODUCT, 1)
    j = te.reduce_axis((0, shape[axis]), name="j")

    def included(i: tirx.Expr) -> tirx.Expr:
        if attrs.reverse:
            return j > i if attrs.exclusive else j >= i
        return j < i if attrs.exclusive else j <= i

    def total(*index):
        source = (*index[:axis], j, *index[axis + 1:])
        # a Select, not the reducer's `where`: create_prim_func drops a reduction's predicate
        return reducer(tirx.Select(included(index[axis]), x[source], const(identity, x.dtype)), axis=j)

    return Kernel([te.compute(shape, total, name="y")], KernelKind.REDUCE)


def _lp_normalization(call: Call) -> Kernel:
    """x / ||x||_p along the axis; where the norm is 0 the output is 0, as the reference leaves it."""
    (x,) = call.inputs
    shape = shape_of(x)
    axis = call.attrs.axis % len(shape)
    magnitude = (lambda v: tirx.abs(v)) if call.attrs.p == 1 else (lambda v: v * v)
    total = reduce_axes(lambda *i: magnitude(x[i]), shape, [axis], te.sum, "norm")

    def normalized(*index):
        norm = total[keep_index(index, [axis])]
        norm = norm if call.attrs.p == 1 else tirx.sqrt(norm)
        return x[index] / tirx.Select(norm == const(0, x.dtype), const(1, x.dtype), norm)

    return Kernel([te.compute(shape, normalized, name="y")], KernelKind.REDUCE)


LOWERINGS: dict[OpDef, Lowering] = {
    reduce_ops.Softmax: Lowering(lambda call: _softmax(call, log=False)),
    reduce_ops.LogSoftmax: Lowering(lambda call: _softmax(call, log=True)),
    **{op: Lowering(functools.partial(_reduce, op)) for op in REDUCTIONS},
    reduce_ops.ReduceLogSumExp: Lowering(_reduce_log_sum_exp),
    reduce_ops.CumSum: Lowering(functools.partial(_scan, op=reduce_ops.CumSum)),
    reduce_ops.CumProd: Lowering(functools.partial(_scan, op=reduce_ops.CumProd)),
    reduce_ops.LpNormalization: Lowering(_lp_normalization),
}
