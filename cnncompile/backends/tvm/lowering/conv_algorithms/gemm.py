"""gemm_1x1 and im2col_gemm: a conv as one GEMM per group, output channels on rows, pixels on columns.

    gemm_1x1     X viewed per batch as a (C, pixels) matrix, no copy:
                 gemm[n, g, o, j] = sum_k Wg[k, o] X[n, g, k, j]
    im2col_gemm  the windows unrolled into a materialized `im2col` matrix (C/G x taps rows,
                 one column per output pixel), then the same GEMM

The result is NCHW as it stands, so the epilogue reads it in place. The plan's tile is
(vectors of pixels, 1, output channels per tile). Constant weights are packed at build
time as (G, K, O/G) (WeightForm.GEMM_MATRIX), so one reduction step's row weights are
contiguous; weights given at run time are read where they lie.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import GEMM_STAGE, IM2COL_STAGE, Kernel, shape_of
from cnncompile.backends.tvm.lowering.conv_algorithms.problem import ConvProblem, flat, unflat

# Reads one operand element: weights (g, k, i), data (n, g, k, j).
WeightRead = Callable[[tirx.Expr, tirx.Expr, tirx.Expr], tirx.Expr]
DataRead = Callable[[tirx.Expr, tirx.Expr, tirx.Expr, tirx.Expr], tirx.Expr]


def gemm_weights(w: np.ndarray, group: int) -> np.ndarray:
    """(O, C/G, *k) -> (G, C/G * taps, O/G): per group, one row of output-channel weights per reduction step."""
    return np.ascontiguousarray(w.reshape(group, w.shape[0] // group, -1).transpose(0, 2, 1))


def _weight_matrix(kernel: Kernel, p: ConvProblem) -> WeightRead:
    """W as a (K, O/G) matrix per group; packed at build time when constant, read in place otherwise."""
    depth = p.group_in * math.prod(p.taps)
    if p.plan.packed_at_build_time:
        packed = kernel.repack(1, (p.group, depth, p.group_out), p.dtype, partial(gemm_weights, group=p.group),
                               "w_matrix")
        return lambda g, k, i: packed[g, k, i]
    return lambda g, k, i: p.w[(g * p.group_out + i, *unflat(k, (p.group_in, *p.taps)))]


def _gemm_kernel(p: ConvProblem, kernel: Kernel, weight: WeightRead, data: DataRead, depth: int) -> Kernel:
    """gemm[n, g, i, j] = sum_k weight(g, k, i) data(n, g, k, j) over the output pixels j, then the epilogue."""
    out_spatial = p.out_shape[2:]
    k = te.reduce_axis((0, depth), name="k")
    shape = (p.out_shape[0], p.group, p.group_out, math.prod(out_spatial))
    gemm = te.compute(shape, lambda n, g, i, j: te.sum(p.product(data(n, g, k, j), weight(g, k, i)), axis=k), name=GEMM_STAGE)

    def read(n, o, *q):
        g, i = (o // p.group_out, o % p.group_out) if p.group > 1 else (0, o)
        return gemm[n, g, i, flat(q, out_spatial)]

    kernel.outputs.append(p.epilogue.finish(read, p.out_shape))
    return kernel


def gemm_1x1(p: ConvProblem) -> Kernel:
    kernel = p.kernel()
    spatial = shape_of(p.x)[2:]

    def data(n, g, k, j):
        return p.x[(n, p.input_channel(g, k), *unflat(j, spatial))]

    return _gemm_kernel(p, kernel, _weight_matrix(kernel, p), data, p.group_in)


def im2col_gemm(p: ConvProblem) -> Kernel:
    kernel = p.kernel()
    padded = p.padded()
    out_spatial = p.out_shape[2:]
    window = (p.group_in, *p.taps)

    def unroll(n, g, k, *q):
        c, *r = unflat(k, window)
        return padded[(n, p.input_channel(g, c), *p.window_positions(q, r))]

    depth = math.prod(window)
    columns = te.compute((p.out_shape[0], p.group, depth, *out_spatial), unroll, name=IM2COL_STAGE)

    def data(n, g, k, j):
        return columns[(n, g, k, *unflat(j, out_spatial))]

    return _gemm_kernel(p, kernel, _weight_matrix(kernel, p), data, depth)
