"""Index-driven reads and writes (ops/indexing.py), generated tensors (ops/generate.py) and SpaceToDepth.

topi's computes are used where they mean exactly what ONNX means (broadcast_to, tile,
trilu, space_to_depth). topi's gathers take no negative indices and put gather_nd's
index tuple first, and its scatters are ir_builder loops with `parallel` and no thread
binding, which no GPU schedule can take; those are written here instead.

A scatter is written as a gather over the updates that land on each output element: a
reduction over the candidate updates (all those along the axis for ScatterElements, all
index tuples for ScatterND) whose index names this element. Each output element is then
computed once, by one thread scanning its candidates serially, so duplicate indices need
no atomics. That is the injective schedule on both targets (CPU: parallel, vectorized
output loops around the scan; CUDA: dlight's Fallback, one thread per output element),
not a reduction schedule, which would share a few candidates among threads for nothing
(and dlight's Reduction rule asserts on ScatterND's read of a whole index tuple). It
costs one comparison per output element and candidate, small for the index tensors
models carry. With no reduction the last matching update wins, as in onnx.reference.

Out-of-range indices are clamped (the reference rejects them), as Gather's lowering does.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from tvm import te, tirx, topi

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering import elementwise
from cnncompile.backends.tvm.lowering.common import PRODUCT, const, is_float, lowest
from cnncompile.ops import generate as generate_ops
from cnncompile.ops import indexing as indexing_ops
from cnncompile.ops import tensor as tensor_ops
from cnncompile.ops.elementwise import CastAttrs
from cnncompile.ops.indexing import ScatterReduction
from cnncompile.ops.registry import OpDef


def _injective(*outputs: te.Tensor) -> Kernel:
    return Kernel(list(outputs), KernelKind.INJECTIVE)


def _wrap(raw: tirx.Expr, size: int) -> tirx.Expr:
    """An index into an axis of `size`: negative ones count from the end, the rest clamp into range."""
    raw = raw.astype("int64")
    return tirx.max(tirx.min(tirx.Select(raw < 0, raw + size, raw), size - 1), 0)


# -- Expand, Tile, the gathers, Compress ------------------------------------------------------------


def _expand(call: Call) -> Kernel:
    return _injective(topi.broadcast_to(call.inputs[0], call.out_types[0].shape))


def _tile(call: Call) -> Kernel:
    return _injective(topi.tile(call.inputs[0], list(call.attrs.repeats)))


def _gather_elements(call: Call) -> Kernel:
    data, indices = call.inputs
    axis = call.attrs.axis % len(shape_of(data))
    size = shape_of(data)[axis]

    def read(*i):
        return data[(*i[:axis], _wrap(indices[i], size), *i[axis + 1:])]

    return _injective(te.compute(shape_of(indices), read, name="y"))


def _gather_nd(call: Call) -> Kernel:
    data, indices = call.inputs
    dims, b = shape_of(data), call.attrs.batch_dims
    lead = len(shape_of(indices)) - 1
    depth = shape_of(indices)[-1]

    def read(*i):
        tuple_ = [_wrap(indices[(*i[:lead], t)], dims[b + t]) for t in range(depth)]
        return data[(*i[:b], *tuple_, *i[lead:])]

    return _injective(te.compute(call.out_types[0].shape, read, name="y"))


def _compress(call: Call) -> Kernel:
    """The kept positions are known at build time: a table of them, read by each output element."""
    (x,) = call.inputs
    attrs = call.attrs
    kept = np.flatnonzero(attrs.condition).astype(np.int64)
    kernel = _injective()
    positions = kernel.table(kept, "positions")
    if attrs.axis is None:
        source = topi.reshape(x, (math.prod(shape_of(x)),))
        kernel.outputs.append(te.compute(call.out_types[0].shape, lambda i: source[positions[i]], name="y"))
        return kernel
    axis = attrs.axis % len(shape_of(x))
    kernel.outputs.append(te.compute(call.out_types[0].shape,
                                     lambda *i: x[(*i[:axis], positions[i[axis]], *i[axis + 1:])], name="y"))
    return kernel


# -- the scatters -------------------------------------------------------------------------------------


def _highest(dtype: object) -> tirx.Expr:
    dtype = str(dtype)
    return tirx.max_value(dtype) if not is_float(dtype) else tirx.const(float("inf"), dtype)


def _scattered(data: te.Tensor, reduction: ScatterReduction, count: int, matches, update) -> te.Tensor:
    """data with every matching candidate update applied: `matches(p, k)` says whether candidate k (of
    `count`) lands on output element p, `update(p, k)` reads it (k clamped into range is always readable)."""
    shape, dtype = shape_of(data), data.dtype
    k = te.reduce_axis((0, count), name="k")
    if reduction is ScatterReduction.NONE:
        last = te.compute(shape, lambda *p: te.max(tirx.Select(matches(p, k), k + 1, 0), axis=k), name="last")
        return te.compute(shape, lambda *p: tirx.Select(last[p] > 0, update(p, tirx.max(last[p] - 1, 0)), data[p]),
                          name="y")
    reducer, identity, combine = {
        ScatterReduction.ADD: (te.sum, const(0, dtype), lambda a, b: a + b),
        ScatterReduction.MUL: (PRODUCT, const(1, dtype), lambda a, b: a * b),
        ScatterReduction.MAX: (te.max, lowest(dtype), tirx.max),
        ScatterReduction.MIN: (te.min, _highest(dtype), tirx.min),
    }[reduction]
    total = te.compute(shape, lambda *p: reducer(tirx.Select(matches(p, k), update(p, k), identity), axis=k),
                       name="scattered")
    return te.compute(shape, lambda *p: combine(data[p], total[p]), name="y")


def _scatter_elements(call: Call) -> Kernel:
    """Candidates for output element p: the updates at p's coordinates with any position k along the axis."""
    data, indices, updates = call.inputs
    dims, index_dims = shape_of(data), shape_of(indices)
    axis = call.attrs.axis % len(dims)

    def at(p, k):
        """p with k on the axis, other coordinates clamped into indices' (smaller or equal) extent."""
        return tuple(k if a == axis else (i if n == d else tirx.min(i, n - 1))
                     for a, (i, n, d) in enumerate(zip(p, index_dims, dims)))

    def matches(p, k):
        inside = [p[a] < n for a, (n, d) in enumerate(zip(index_dims, dims)) if a != axis and n != d]
        return tirx.all(*inside, _wrap(indices[at(p, k)], dims[axis]) == p[axis])

    return _injective(_scattered(data, call.attrs.reduction, index_dims[axis], matches,
                                 lambda p, k: updates[at(p, k)]))


def unravel(flat: tirx.Expr, shape: tuple[int, ...]) -> list[tirx.Expr]:
    """The row-major coordinates in `shape` of position `flat`."""
    coords = []
    for extent in reversed(shape):
        coords.append(tirx.floormod(flat, extent))
        flat = tirx.floordiv(flat, extent)
    return coords[::-1]


def _scatter_nd(call: Call) -> Kernel:
    """Candidates for output element p: every index tuple, numbered in row-major order."""
    data, indices, updates = call.inputs
    dims = shape_of(data)
    lead, depth = shape_of(indices)[:-1], shape_of(indices)[-1]

    def matches(p, k):
        j = unravel(k, lead)
        return tirx.all(*(_wrap(indices[(*j, t)], dims[t]) == p[t] for t in range(depth)))

    def update(p, k):
        return updates[(*unravel(k, lead), *p[depth:])]

    return _injective(_scattered(data, call.attrs.reduction, math.prod(lead), matches, update))


# -- generated tensors ---------------------------------------------------------------------------------


def _range(call: Call) -> Kernel:
    attrs, out = call.attrs, call.out_types[0]
    dtype = out.dtype.value
    start, delta = (const(a.reshape(()).item(), dtype) for a in (attrs.start, attrs.delta))
    return _injective(te.compute(out.shape, lambda i: start + i.astype(dtype) * delta, name="y"))


def _eye_like(call: Call) -> Kernel:
    out = call.out_types[0]
    one, zero = const(1, out.dtype.value), const(0, out.dtype.value)
    return _injective(te.compute(out.shape, lambda i, j: tirx.Select(j - i == call.attrs.k, one, zero), name="y"))


def _one_hot(call: Call) -> Kernel:
    indices, values = call.inputs
    attrs = call.attrs
    axis = attrs.axis % (len(shape_of(indices)) + 1)
    lead = (0,) * (len(shape_of(values)) - 1)
    on, off = values[(*lead, 1)], values[(*lead, 0)]

    def read(*p):
        index = indices[(*p[:axis], *p[axis + 1:])].astype("int64")  # float indices truncate, as Cast does
        index = tirx.Select(index < 0, index + attrs.depth, index)
        return tirx.Select(index == p[axis].astype("int64"), on, off)

    return _injective(te.compute(call.out_types[0].shape, read, name="y"))


def _trilu(call: Call) -> Kernel:
    x, *k = call.inputs
    diagonal = k[0](*[0] * len(shape_of(k[0]))) if k else tirx.const(0, "int64")
    return _injective(topi.trilu(x, diagonal, bool(call.attrs.upper)))


def _size(call: Call) -> Kernel:
    count = const(call.in_types[0].numel, "int64")
    return _injective(te.compute((), lambda: count, name="y"))


def _cast_like(call: Call) -> Kernel:
    """Cast to target_type's element type; target_type itself is never read."""
    return elementwise._cast(replace(call, inputs=call.inputs[:1], attrs=CastAttrs(to=call.out_types[0].dtype)))


def _space_to_depth(call: Call) -> Kernel:
    return _injective(topi.nn.space_to_depth(call.inputs[0], call.attrs.blocksize))


LOWERINGS: dict[OpDef, Lowering] = {
    indexing_ops.Expand: Lowering(_expand),
    indexing_ops.Tile: Lowering(_tile),
    indexing_ops.GatherElements: Lowering(_gather_elements),
    indexing_ops.GatherND: Lowering(_gather_nd),
    indexing_ops.ScatterElements: Lowering(_scatter_elements),
    indexing_ops.ScatterND: Lowering(_scatter_nd),
    indexing_ops.Compress: Lowering(_compress),
    generate_ops.Range: Lowering(_range),
    generate_ops.EyeLike: Lowering(_eye_like),
    generate_ops.OneHot: Lowering(_one_hot),
    generate_ops.Trilu: Lowering(_trilu),
    generate_ops.Size: Lowering(_size),
    generate_ops.CastLike: Lowering(_cast_like),
    tensor_ops.SpaceToDepth: Lowering(_space_to_depth),
}
