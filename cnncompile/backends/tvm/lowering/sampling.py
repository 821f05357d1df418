"""Sampling and data movement by coordinates (ops/sampling.py): GridSample, AffineGrid, Col2Im,
MaxUnpool, CenterCropPad.

GridSample is written here, not taken from topi.image.grid_sample: topi reads the grid as
(N, r, *out) where ONNX gives (N, *out, r), covers 2-D and 3-D by two separate kernels
without cubic 3-D, and orders its steps otherwise than ONNX's definition (nearest rounds
after the padding fix, reflected taps are clipped, not truncated), which changes ties. This
TE transcribes the reference's steps per axis (ops.sampling.axis_taps) for any rank.
AffineGrid is not topi.image.affine_grid either: topi writes (N, r, *out) too and steps an
align_corners axis by (2 - 1e-7) / (n - 1); here the pixels' normalized coordinates are a
table from the reference's own function, so both agree to the bit before theta multiplies.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import const, dtype_of
from cnncompile.backends.tvm.lowering.indexing import unravel
from cnncompile.ops import sampling as sampling_ops
from cnncompile.ops.registry import OpDef
from cnncompile.ops.sampling import GridPadding, GridSampleMode


def _reflect(x: tirx.Expr, low: float, high: float) -> tirx.Expr:
    """ops.sampling.reflect in TE: x mirrored at low and high until it lies between them."""
    dtype = dtype_of(x)
    span = high - low
    if span <= 0:
        return const(low, dtype)
    distance, period = tirx.abs(x - const(low, dtype)), const(2 * span, dtype)
    wave = distance - tirx.floor(distance / period) * period  # np.mod; LLVM has no tirx.fmod
    return const(low + span, dtype) - tirx.abs(wave - const(span, dtype))


def _cubic_weights(t: tirx.Expr) -> list[tirx.Expr]:
    a = sampling_ops.CUBIC_A
    one, two = const(1, dtype_of(t)), const(2, dtype_of(t))

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + one), near(t), near(one - t), far(two - t)]


def _axis_taps(g: tirx.Expr, length: int, attrs: sampling_ops.GridSampleAttrs) -> list[tuple[tirx.Expr, tirx.Expr]]:
    """ops.sampling.axis_taps in TE: (int32 index, weight) of each tap along one axis."""
    dtype = dtype_of(g)
    align = bool(attrs.align_corners)
    low, high = sampling_ops.coordinate_bounds(length, align)
    x = sampling_ops.denormalize(g, length, align)
    if attrs.mode is GridSampleMode.NEAREST:
        x = tirx.nearbyint(x)  # halves to even, as NumPy's rint
    if attrs.padding_mode is GridPadding.BORDER and not sampling_ops.cubic_border(attrs):
        outside = tirx.Or(x < const(low, dtype), x > const(high, dtype))
        x = tirx.Select(outside, tirx.max(tirx.min(x, const(length - 1, dtype)), const(0, dtype)), x)
    elif attrs.padding_mode is GridPadding.REFLECTION:
        x = _reflect(x, low, high)
    base = tirx.floor(x)
    t = x - base
    offsets = {1: [0], 2: [0, 1], 4: [-1, 0, 1, 2]}[attrs.mode.taps]
    weights = {1: [const(1, dtype)], 2: [const(1, dtype) - t, t], 4: _cubic_weights(t)}[attrs.mode.taps]
    taps = []
    for offset, weight in zip(offsets, weights):
        index = base + const(offset, dtype)
        if attrs.padding_mode is GridPadding.ZEROS:
            inside = tirx.And(index >= const(0, dtype), index < const(length, dtype))
            weight = tirx.Select(inside, weight, const(0, dtype))
        elif attrs.padding_mode is GridPadding.REFLECTION:
            index = tirx.trunc(_reflect(index, low, high))
        clamped = tirx.max(tirx.min(index, const(length - 1, dtype)), const(0, dtype))
        taps.append((clamped.astype("int32"), weight))
    return taps


def _grid_sample(call: Call) -> Kernel:
    x, grid = call.inputs
    attrs = call.attrs
    spatial = shape_of(x)[2:]
    rank = len(spatial)
    compute = str(np.result_type(str(x.dtype), str(grid.dtype)))

    def sample(n, c, *point):
        per_axis = [_axis_taps(grid[(n, *point, rank - 1 - a)].astype(compute), length, attrs)
                    for a, length in enumerate(spatial)]
        total = const(0, compute)
        for combination in itertools.product(*per_axis):
            weight = math.prod((w for _, w in combination[1:]), start=combination[0][1])
            total = total + weight * x[(n, c, *(i for i, _ in combination))].astype(compute)
        return total.astype(x.dtype)

    return Kernel([te.compute(call.out_types[0].shape, sample, name="y")], KernelKind.INJECTIVE)


def _affine_grid(call: Call) -> Kernel:
    """grid[n, *p, k] = sum_j theta[n, k, j] * point[*p, j], point the pixel's homogeneous normalized coordinates."""
    (theta,) = call.inputs
    size = call.attrs.size
    kernel = Kernel([], KernelKind.INJECTIVE)
    points = kernel.table(sampling_ops.homogeneous_grid(size[2:], bool(call.attrs.align_corners))
                          .astype(str(theta.dtype)), "points")
    width = len(size) - 1

    def transformed(n, *index):
        *p, k = index
        terms = [theta[n, k, j] * points[(*p, j)] for j in range(width)]
        return sum(terms[1:], terms[0])

    kernel.outputs.append(te.compute(call.out_types[0].shape, transformed, name="grid"))
    return kernel


def _center_crop_pad(call: Call) -> Kernel:
    """out[i] = x[i - offset] where that lies in x, else 0 (offset negative along a cropped axis, the read
    clamped along a padded one)."""
    (x,) = call.inputs
    dims = shape_of(x)
    offsets = sampling_ops.crop_pad_offsets(dims, call.attrs.shape, call.attrs.axes)

    padded = [m > n for m, n in zip(call.out_types[0].shape, dims)]  # an odd pad of 1 has offset 0

    def read(*i):
        source = [j - o for j, o in zip(i, offsets)]
        inside = [tirx.And(s >= 0, s < n) for s, n, pad in zip(source, dims, padded) if pad]
        clamped = tuple(tirx.max(tirx.min(s, n - 1), 0) if pad else s for s, n, pad in zip(source, dims, padded))
        value = x[clamped]
        return tirx.Select(tirx.all(*inside), value, const(0, x.dtype)) if inside else value

    return Kernel([te.compute(call.out_types[0].shape, read, name="y")], KernelKind.INJECTIVE)


def _col2im(call: Call) -> Kernel:
    """image[n, c, y] = the sum over block elements k whose window, placed at some block position, covers y:
    the column entry x[n, c * K + k, that position] (a conv's adjoint, read as a gather)."""
    (x,) = call.inputs
    attrs = call.attrs
    window = sampling_ops.col2im_window(attrs)
    block = attrs.block_shape
    rk = [te.reduce_axis((0, k), name=f"k{a}") for a, k in enumerate(block)]

    def gather(n, c, *y):
        starts = [p + b - k * d for p, b, k, d in zip(y, window.pads_begin, rk, window.dilations)]
        hits = [tirx.all(s >= 0, tirx.floormod(s, st) == 0, tirx.floordiv(s, st) < o)
                for s, st, o in zip(starts, window.strides, window.out)]
        positions = [tirx.max(tirx.min(tirx.floordiv(s, st), o - 1), 0)
                     for s, st, o in zip(starts, window.strides, window.out)]
        column = 0
        for p, o in zip(positions, window.out):
            column = column * o + p
        element = 0
        for k, extent in zip(rk, block):
            element = element * extent + k
        value = x[n, c * math.prod(block) + element, column]
        # a Select, not te.sum's `where`: create_prim_func drops a reduction's predicate
        return te.sum(tirx.Select(tirx.all(*hits), value, const(0, x.dtype)), axis=rk)

    return Kernel([te.compute(call.out_types[0].shape, gather, name="y")], KernelKind.REDUCE)


def _max_unpool(call: Call) -> Kernel:
    """A scatter written as a gather, as lowering.indexing writes ScatterND: each output element takes the
    last X element whose flat index in I names it, or 0. Every X element is a candidate (I indexes the whole
    output), one comparison per output element and X element."""
    x, indices = call.inputs
    in_dims, out_dims = shape_of(x), call.out_types[0].shape
    k = te.reduce_axis((0, math.prod(in_dims)), name="k")

    def flat(p) -> tirx.Expr:
        position = const(0, "int64")
        for i, extent in zip(p, out_dims):
            position = position * extent + i.astype("int64")
        return position

    last = te.compute(out_dims, lambda *p: te.max(
        tirx.Select(indices[tuple(unravel(k, in_dims))] == flat(p), k + 1, 0), axis=k), name="last")
    out = te.compute(out_dims, lambda *p: tirx.Select(
        last[p] > 0, x[tuple(unravel(tirx.max(last[p] - 1, 0), in_dims))], const(0, x.dtype)), name="y")
    return Kernel([out], KernelKind.INJECTIVE)


LOWERINGS: dict[OpDef, Lowering] = {
    sampling_ops.GridSample: Lowering(_grid_sample),
    sampling_ops.AffineGrid: Lowering(_affine_grid),
    sampling_ops.CenterCropPad: Lowering(_center_crop_pad),
    sampling_ops.Col2Im: Lowering(_col2im),
    sampling_ops.MaxUnpool: Lowering(_max_unpool),
}
