"""winograd_f2x3 / winograd_f4x3 for a conv stored in NCHWc: F(m, 3) vectorized over channel blocks.

The same three stages as the NCHW kernel (winograd.py), but every tensor keeps a block of
channels innermost, as X and Y do, so that each transform is a sequence of vector
operations on a block of channels and the GEMM per transform point is the register tile
of the direct NCHWc conv (weight vectors of output channels, broadcast inputs):

    V[xi, nu, cb, t, ci] = (BT d BT^T)[xi, nu], d the t-th a x a tile of input channel cb*vb + ci
    M[xi, nu, ob, t, oi] = sum_{cb, ci} U[xi, nu, ob, cb, ci, oi] V[xi, nu, cb, t, ci]
    Y tile t             = AT M[:, :, ob, t, oi] A     for output channel ob*B + oi

t runs over (n, tile row, tile column). U = G g GT is computed and packed at build time.
The output tiles are written as an image (n, ob, tile row, m, tile column, m, oi): when
the tiles cover Y exactly, that image is Y and the epilogue (bias, residual, activation,
in Y's layout) is computed as each tile is written; when they overhang its edge, a
separate `winograd_crop` stage crops it while applying the epilogue. The tile count needs
no rounding (the NCHW kernel vectorizes over tiles; this one over channels). Each
transform is a pair of element-wise stages whose values are sums with immediate
coefficients (`matrix_row`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from tvm import te, tirx

from cnncompile.algorithms.winograd import tile_grid, transform_taps, winograd_matrices
from cnncompile.backends.tvm.kernel import (
    GEMM_STAGE, WINOGRAD_CROP_STAGE, WINOGRAD_INPUT_STAGE, WINOGRAD_OUTPUT_STAGE, Kernel,
)
from cnncompile.backends.tvm.lowering.common import const
from cnncompile.backends.tvm.lowering.conv_algorithms.problem import ConvProblem
from cnncompile.backends.tvm.lowering.epilogue import EPILOGUE_STAGE
from cnncompile.backends.tvm.lowering.layouts import physical_index, physical_shape
from cnncompile.backends.tvm.tiling import vector_width
from cnncompile.ir.types import LayoutKind


def matrix_row(matrix: np.ndarray, row: tirx.Expr, read: Callable[[int], tirx.Expr], dtype: str) -> tirx.Expr:
    """sum_k matrix[row, k] * read(k) for a symbolic `row`: one sum per row of the matrix, without its
    zero terms and with its +-1 coefficients as plain additions, selected by `row`. The schedule
    unrolls the loop over `row`, so the selection folds away and each copy is its own short sum.
    Written as a reduction over k, each term would be an update statement of its own, and the
    output transform, being a reduction, could not take the epilogue in."""
    terms = [read(k) for k in range(matrix.shape[1])]
    value: tirx.Expr | None = None
    for r in reversed(range(matrix.shape[0])):
        total = None
        for coefficient, term in zip(matrix[r], terms):
            if coefficient == 0:
                continue
            scaled = term if abs(coefficient) == 1 else const(float(abs(coefficient)), dtype) * term
            if total is None:
                total = scaled if coefficient > 0 else -scaled
            else:
                total = total + scaled if coefficient > 0 else total - scaled
        total = total if total is not None else const(0, dtype)
        value = total if value is None else tirx.Select(row == r, total, value)
    return value


def packed_weights(w: np.ndarray, m: int, out_block: int, in_block: int) -> np.ndarray:
    """U = G g GT as (a, a, O/out_block, C/in_block, in_block, out_block): per transform point, the
    GEMM's weights with a vector of output channels contiguous for each input channel."""
    o, c, r, _ = w.shape
    taps = w.reshape(o // out_block, out_block, c // in_block, in_block, r, r).transpose(4, 5, 0, 2, 3, 1)
    return transform_taps(taps, m)


def winograd_nchwc(p: ConvProblem) -> Kernel:
    """F(m, 3) for a 3x3 stride-1 conv whose output is stored NCHWc (X in NCHWc or NCHW)."""
    call, m = p.call, p.plan.algorithm.winograd_tile
    source, layout = p.plan.source, p.plan.layout
    matrices = winograd_matrices(m, 3)
    a = matrices.a
    batch, channels, height, width = call.in_types[0].shape
    out_channels, (out_h, out_w) = p.out_shape[1], p.out_shape[2:]
    ob = layout.block
    blocked_source = source is not None and source.kind is LayoutKind.NCHWC
    vb = source.block if blocked_source else vector_width(channels, call.lanes)
    tiles_h, tiles_w = tile_grid((out_h, out_w), m)
    tiles = batch * tiles_h * tiles_w
    begin, end = p.window.pads_begin, p.window.pads_end
    padded = p.padded([tiles_h * m + 2 - height - begin[0] - end[0], tiles_w * m + 2 - width - begin[1] - end[1]])
    dtype = p.dtype
    kernel = p.kernel()
    u = kernel.repack(1, (a, a, out_channels // ob, channels // vb, vb, ob), dtype,
                      partial(packed_weights, m=m, out_block=ob, in_block=vb), "w_winograd")

    def tile_input(cb, t, r1, r2, ci):
        n, row, col = t // (tiles_h * tiles_w), (t // tiles_w) % tiles_h, t % tiles_w
        h, w = row * m + r1, col * m + r2
        if blocked_source:
            return padded[n, cb, h, w, ci]
        return padded[physical_index(source, (n, cb * vb + ci, h, w))]

    v_shape = (a, a, channels // vb, tiles, vb)
    rows = te.compute(v_shape, lambda xi, r2, cb, t, ci: matrix_row(
        matrices.BT, xi, lambda r1: tile_input(cb, t, r1, r2, ci), dtype), name=f"{WINOGRAD_INPUT_STAGE}_rows")
    v = te.compute(v_shape, lambda xi, nu, cb, t, ci: matrix_row(
        matrices.BT, nu, lambda r2: rows[xi, r2, cb, t, ci], dtype), name=WINOGRAD_INPUT_STAGE)
    cb, ci = te.reduce_axis((0, channels // vb), name="cb"), te.reduce_axis((0, vb), name="ci")
    product = te.compute((a, a, out_channels // ob, tiles, ob),
                         lambda xi, nu, ok, t, oi: te.sum(u[xi, nu, ok, cb, ci, oi] * v[xi, nu, cb, t, ci],
                                                          axis=[cb, ci]),
                         name=GEMM_STAGE)
    half = te.compute((a, m, out_channels // ob, tiles, ob), lambda s1, vw, ok, t, oi: matrix_row(
        matrices.AT, vw, lambda s2: product[s1, s2, ok, t, oi], dtype), name=f"{WINOGRAD_OUTPUT_STAGE}_rows")
    image = te.compute((batch, out_channels // ob, tiles_h, m, tiles_w, m, ob),
                       lambda n, ok, th, vh, tw, vw, oi: matrix_row(
                           matrices.AT, vh, lambda s1: half[s1, vw, ok, (n * tiles_h + th) * tiles_w + tw, oi], dtype),
                       name=WINOGRAD_OUTPUT_STAGE)

    def read(n, ok, h, w, oi):
        return image[n, ok, h // m, h % m, w // m, w % m, oi]

    overhang = tiles_h * m != out_h or tiles_w * m != out_w
    kernel.outputs.append(p.epilogue.finish_stored(read, physical_shape(call.out_types[0]), layout,
                                                   WINOGRAD_CROP_STAGE if overhang else EPILOGUE_STAGE))
    return kernel
