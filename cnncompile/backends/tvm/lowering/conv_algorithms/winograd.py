"""winograd_f2x3 / winograd_f4x3: F(m, 3) for 2-D 3x3 stride-1 convs.

V = BT d B for every a x a tile of the padded input (`winograd_input`), M = U V as a GEMM
over channels batched over the a x a transform points (U = G g GT computed at build time
by cnncompile.algorithms.winograd), the m x m output tiles AT M A (`winograd_output`),
cropped by the epilogue. Each transform is two passes of one matrix (`<stage>_rows`, then
the stage). The plan's tile is the GEMM's: (vectors of tiles, 1, output channels per tile). BT and AT enter the compute as expressions of their indices
(`const_matrix`): once the schedule unrolls those loops every coefficient is an immediate
and the zeros vanish.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from tvm import te, tirx

from cnncompile.algorithms.winograd import tile_grid, transform_weights, winograd_matrices
from cnncompile.backends.tvm.kernel import (
    GEMM_STAGE, WINOGRAD_INPUT_STAGE, WINOGRAD_OUTPUT_STAGE, Kernel, shape_of,
)
from cnncompile.backends.tvm.lowering.common import const
from cnncompile.backends.tvm.lowering.conv_algorithms.problem import ConvProblem
from cnncompile.backends.tvm.intermediates import winograd_columns


def const_matrix(matrix: np.ndarray, dtype: str) -> Callable[[tirx.Expr, tirx.Expr], tirx.Expr]:
    """matrix[i, j] as an expression of (i, j): selects over the non-zero entries, one immediate once unrolled."""

    def read(i: tirx.Expr, j: tirx.Expr) -> tirx.Expr:
        value = const(0, dtype)
        for (r, c), entry in np.ndenumerate(matrix):
            if entry != 0:
                value = tirx.Select(tirx.all(i == r, j == c), const(float(entry), dtype), value)
        return value

    return read


def winograd_weights(w: np.ndarray, m: int) -> np.ndarray:
    """U = G g GT as (a, a, C, O): per transform point, the GEMM's (channels x output channels) matrix."""
    return np.ascontiguousarray(transform_weights(w, m).transpose(0, 1, 3, 2))


def winograd(p: ConvProblem) -> Kernel:
    """F(m, 3): tiles t = (n, tile row, tile column); on a CPU the tile count is rounded up to whole
    vectors, the extra tiles reading zeros (and their results never read)."""
    m = p.plan.algorithm.winograd_tile
    matrices = winograd_matrices(m, 3)
    a = matrices.a
    batch, channels, height, width = shape_of(p.x)
    out_channels, (out_h, out_w) = p.out_shape[1], p.out_shape[2:]
    tiles_h, tiles_w = tile_grid((out_h, out_w), m)
    tiles = batch * tiles_h * tiles_w
    columns = winograd_columns(p.plan.spec, m, p.call.lanes)
    begin = p.window.pads_begin
    padded = p.padded([tiles_h * m + 2 - height - begin[0] - p.window.pads_end[0],
                       tiles_w * m + 2 - width - begin[1] - p.window.pads_end[1]])
    bt, at = const_matrix(matrices.BT, p.dtype), const_matrix(matrices.AT, p.dtype)
    kernel = p.kernel()
    u = kernel.repack(1, (a, a, channels, out_channels), p.dtype, partial(winograd_weights, m=m), "w_winograd")

    def tile_input(c, t, r1, r2):
        real = tirx.min(t, tiles - 1)
        n, row, col = real // (tiles_h * tiles_w), (real // tiles_w) % tiles_h, real % tiles_w
        d = padded[n, c, row * m + r1, col * m + r2]
        return tirx.Select(t < tiles, d, const(0, p.dtype)) if columns > tiles else d

    r1 = te.reduce_axis((0, a), name="r1")
    rows = te.compute((a, a, channels, columns),
                      lambda xi, r2, c, t: te.sum(bt(xi, r1) * tile_input(c, t, r1, r2), axis=r1),
                      name=f"{WINOGRAD_INPUT_STAGE}_rows")
    r2 = te.reduce_axis((0, a), name="r2")
    v = te.compute((a, a, channels, columns), lambda xi, nu, c, t: te.sum(bt(nu, r2) * rows[xi, r2, c, t], axis=r2),
                   name=WINOGRAD_INPUT_STAGE)
    c = te.reduce_axis((0, channels), name="c")
    product = te.compute((a, a, out_channels, columns),
                         lambda xi, nu, o, t: te.sum(u[xi, nu, c, o] * v[xi, nu, c, t], axis=c), name=GEMM_STAGE)
    s2 = te.reduce_axis((0, a), name="s2")
    half = te.compute((a, m, out_channels, columns),
                      lambda s1, vw, o, t: te.sum(at(vw, s2) * product[s1, s2, o, t], axis=s2),
                      name=f"{WINOGRAD_OUTPUT_STAGE}_rows")
    s1 = te.reduce_axis((0, a), name="s1")
    out_tiles = te.compute((m, m, out_channels, columns),
                           lambda vh, vw, o, t: te.sum(at(vh, s1) * half[s1, vw, o, t], axis=s1),
                           name=WINOGRAD_OUTPUT_STAGE)

    def read(n, o, h, w):
        return out_tiles[h % m, w % m, o, (n * tiles_h + h // m) * tiles_w + w // m]

    kernel.outputs.append(p.epilogue.finish(read, p.out_shape))
    return kernel
