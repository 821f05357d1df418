"""Ranking along one axis: ArgMax and ArgMin (topi's), Hardmax, TopK.

Equal values go to the lower index everywhere, as the reference orders them (ops/ranking.py).
"""

from __future__ import annotations

from tvm import te, tirx, topi

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import lowest
from cnncompile.ops import ranking as ranking_ops
from cnncompile.ops.registry import OpDef


def _arg(call: Call, largest: bool) -> te.Tensor:
    """topi's argmax/argmin (a reduction over (index, value) pairs), its int32 indices widened to int64."""
    (x,) = call.inputs
    attrs = call.attrs
    pick = topi.argmax if largest else topi.argmin
    index = pick(x, axis=attrs.axis % len(shape_of(x)), keepdims=bool(attrs.keepdims),
                 select_last_index=bool(attrs.select_last_index))
    return te.compute(shape_of(index), lambda *i: index[i].astype("int64"), name="y")


def _hardmax(call: Call) -> Kernel:
    (x,) = call.inputs
    axis = call.attrs.axis % len(shape_of(x))
    first = topi.argmax(x, axis=axis, keepdims=True)

    def one_hot(*index):
        at = tuple(0 if a == axis else i for a, i in enumerate(index))
        return tirx.Select(first[at] == index[axis], tirx.const(1, x.dtype), tirx.const(0, x.dtype))

    return Kernel([te.compute(shape_of(x), one_hot, name="y")], KernelKind.REDUCE)


def _topk(call: Call) -> Kernel:
    """Each element's rank (how many come before it: larger, or equal at a lower index), then place p takes
    the element of rank p.

    Two reductions, not topi.topk: topi's is a packed call into TVM's C++ sort on CPUs and a
    separate IR-builder kernel on GPUs, which neither our CPU templates nor dlight's rules
    schedule. Ranking costs n comparisons per element of an axis of n, which CNN heads
    (k of a few hundred classes at most) afford.
    """
    (x,) = call.inputs
    attrs = call.attrs
    shape = shape_of(x)
    axis = attrs.axis % len(shape)
    n = shape[axis]

    def along(index, position):
        return (*index[:axis], position, *index[axis + 1:])

    j = te.reduce_axis((0, n), name="j")

    def rank(*index):
        mine, other = x[index], x[along(index, j)]
        better = other > mine if attrs.largest else other < mine
        before = tirx.Or(better, tirx.And(other == mine, j < index[axis]))
        return te.sum(before.astype("int64"), axis=j)

    ranks = te.compute(shape, rank, name="rank")
    out_shape = call.out_types[0].shape

    def place(name: str, pick, nothing: tirx.Expr) -> te.Tensor:
        """Place p's value or index: a max over the axis where only the element of rank p is not `nothing`
        (gathering values by the index output would make an output an input, which dlight refuses)."""
        i = te.reduce_axis((0, n), name=f"{name}_i")

        def chosen(*p):
            return te.max(tirx.Select(ranks[along(p, i)] == p[axis], pick(p, i), nothing), axis=i)

        return te.compute(out_shape, chosen, name=name)

    values = place("values", lambda p, i: x[along(p, i)], lowest(x.dtype))
    indices = place("indices", lambda p, i: i.astype("int64"), tirx.const(-1, "int64"))
    return Kernel([values, indices], KernelKind.REDUCE)


LOWERINGS: dict[OpDef, Lowering] = {
    ranking_ops.ArgMax: Lowering(lambda call: Kernel([_arg(call, largest=True)], KernelKind.REDUCE)),
    ranking_ops.ArgMin: Lowering(lambda call: Kernel([_arg(call, largest=False)], KernelKind.REDUCE)),
    ranking_ops.Hardmax: Lowering(_hardmax),
    ranking_ops.TopK: Lowering(_topk),
}
