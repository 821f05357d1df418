"""Pooling: MaxPool, AveragePool and LpPool over a window, and the global pools.

A windowed pool is `pad` (the window's padding, plus the overhang ceil_mode allows) and
one reduction named `pool` over the window offsets; AveragePool divides by a table of
per-position counts computed in NumPy exactly as the reference counts them (whether
padding counts is a property of the position, not of the data).

Inputs stored in a layout (NHWC, NCHWc) are pooled in it: the window moves over the
physical spatial axes and the channel axes are carried along, so the innermost (channel
block) loop is the one the POOL schedule vectorizes.

A 16-bit float input is pooled in its float32 accumulator (sums must be; the maximum is the
same either way) and rounded once as it is stored.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from tvm import te, tirx

from cnncompile.algorithms.windows import Window, reduce_windows, resolve_window
from cnncompile.backends.tvm.kernel import POOL_STAGE, Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import const, lowest, widen
from cnncompile.ir.types import DType
from cnncompile.backends.tvm.lowering.layouts import pad_spatial, physical_shape, spatial_axes
from cnncompile.ops import pool as pool_ops
from cnncompile.ops.registry import OpDef


def _window(call: Call, op: str) -> Window:
    a = call.attrs
    return resolve_window(op, call.in_types[0].shape[2:], tuple(a.kernel_shape), a.strides, a.dilations,
                          a.pads, a.auto_pad, ceil_mode=bool(a.ceil_mode))


def _pad_end(spatial: tuple[int, ...], window: Window) -> list[int]:
    """End padding: the declared one, or more where a ceil_mode window overhangs the input."""
    return [max(e, (o - 1) * s + x - (n + b))
            for n, o, s, x, b, e in zip(spatial, window.out, window.strides, window.extent,
                                        window.pads_begin, window.pads_end)]


def _windowed(call: Call, window: Window, fill, reducer) -> te.Tensor:
    (x,) = call.inputs
    layout = call.in_types[0].layout
    spatial = call.in_types[0].shape[2:]
    axes = spatial_axes(layout, len(spatial) + 2)
    padded = pad_spatial(x, layout, window.pads_begin, _pad_end(spatial, window), fill)
    rk = [te.reduce_axis((0, k), name=f"rk{i}") for i, k in enumerate(window.kernel)]

    def compute(*index):
        position = list(index)
        for axis, ki, s, d in zip(axes, rk, window.strides, window.dilations):
            position[axis] = index[axis] * s + ki * d
        return reducer(widen(padded[tuple(position)], _accumulator(x)), axis=rk)

    return te.compute(physical_shape(call.out_types[0]), compute, name=POOL_STAGE)


def _accumulator(x: te.Tensor) -> str:
    return DType(str(x.dtype)).accumulator.value


def _rounded(call: Call, pooled: te.Tensor) -> te.Tensor:
    """The pooled values in the output's element type: a stage rounding them where they were pooled wider."""
    store = call.out_types[0].dtype.value
    if str(pooled.dtype) == store:
        return pooled
    return te.compute(shape_of(pooled), lambda *i: pooled[i].astype(store), name="rounded")


def _max_pool(call: Call) -> Kernel:
    x = call.inputs[0]
    pooled = _windowed(call, _window(call, "MaxPool"), lowest(x.dtype), te.max)
    return Kernel([_rounded(call, pooled)], KernelKind.POOL)


def _divisors(spatial: tuple[int, ...], window: Window, count_include_pad: int) -> np.ndarray:
    """How many window elements each output averages, as the reference counts them."""
    if count_include_pad:
        padded = [n + b + e for n, b, e in zip(spatial, window.pads_begin, window.pads_end)]
        mask = np.ones((1, 1, *padded))
        window = replace(window, pads_begin=(0,) * len(padded), pads_end=(0,) * len(padded))
    else:
        mask = np.ones((1, 1, *spatial))
    return np.maximum(reduce_windows(mask, window, np.add)[0, 0], 1)


def _average_pool(call: Call) -> Kernel:
    x = call.inputs[0]
    window = _window(call, "AveragePool")
    spatial = call.in_types[0].shape[2:]
    axes = spatial_axes(call.in_types[0].layout, len(spatial) + 2)
    sums = _windowed(call, window, const(0, x.dtype), te.sum)
    kernel = Kernel([], KernelKind.POOL)
    counts = kernel.table(_divisors(spatial, window, call.attrs.count_include_pad).astype(str(sums.dtype)), "divisor")
    mean = te.compute(shape_of(sums), lambda *i: sums[i] / counts[tuple(i[a] for a in axes)], name="mean")
    kernel.outputs.append(_rounded(call, mean))
    return kernel


def _lp_pool(call: Call) -> Kernel:
    """(sum of |x|^p over the window)^(1/p): the window sums |x|^p, padding adding 0, and the root follows."""
    x = call.inputs[0]
    p = call.attrs.p
    window = _window(call, "LpPool")
    wide = _accumulator(x)
    magnitudes = te.compute(shape_of(x), lambda *i: tirx.power(tirx.abs(widen(x[i], wide)), const(p, wide)),
                            name="magnitude")
    sums = _windowed(replace(call, inputs=(magnitudes,)), window, const(0, magnitudes.dtype), te.sum)
    root = te.compute(shape_of(sums), lambda *i: tirx.power(sums[i], const(1.0 / p, wide)), name="p_root")
    return Kernel([_rounded(call, root)], KernelKind.POOL)


def _global(call: Call, average: bool) -> Kernel:
    (x,) = call.inputs
    spatial = call.in_types[0].shape[2:]
    axes = spatial_axes(call.in_types[0].layout, len(spatial) + 2)
    rk = [te.reduce_axis((0, n), name=f"rk{i}") for i, n in enumerate(spatial)]
    reducer = te.sum if average else te.max

    def compute(*index):
        source = list(index)
        for axis, r in zip(axes, rk):
            source[axis] = r
        return reducer(widen(x[tuple(source)], _accumulator(x)), axis=rk)

    pooled = te.compute(physical_shape(call.out_types[0]), compute, name=POOL_STAGE)
    if not average:
        return Kernel([_rounded(call, pooled)], KernelKind.REDUCE)
    count = const(math.prod(spatial), pooled.dtype)
    return Kernel([_rounded(call, te.compute(shape_of(pooled), lambda *i: pooled[i] / count, name="mean"))],
                  KernelKind.REDUCE)


LOWERINGS: dict[OpDef, Lowering] = {
    pool_ops.MaxPool: Lowering(_max_pool),
    pool_ops.AveragePool: Lowering(_average_pool),
    pool_ops.LpPool: Lowering(_lp_pool),
    pool_ops.GlobalAveragePool: Lowering(lambda call: _global(call, average=True)),
    pool_ops.GlobalMaxPool: Lowering(lambda call: _global(call, average=False)),
}
