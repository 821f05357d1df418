"""CPU schedule templates, one per conv plan template (backends/tvm/plan.py) and per other kernel kind.

Convolutions and matrix products keep a register tile of accumulators with the reduction
loops outside it, in a local buffer LLVM promotes to registers; the epilogue (bias,
residual, activation) runs on the tile right after the reduction, before anything is
stored, and the tiles run in parallel.

    DIRECT_BLOCKED / GEMM_BLOCKED  vectors of output channels (columns) x a few output pixels
                                   (rows): per reduction step, contiguous weight loads and
                                   broadcast inputs (the plan's tile)
    DIRECT                         per output channel, rows x one vector of output columns
                                   (depthwise, odd groups, run-time weights)
    DIRECT_STORED                  convs stored NCHWc or NHWC: cpu_layouts.py
    GEMM (kind)                    rows x one vector of output columns
    POOL                           window loops outside the innermost output loop, which vectorizes
    GEMM, WINOGRAD(_BLOCKED), FFT  the conv algorithms' kernels: cpu_algorithms.py
    REDUCE, INJECTIVE              inline what TIR allows, then parallel + vectorized loops
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tvm import tirx
from tvm.tirx.analysis import undefined_vars
from tvm.s_tir import Schedule
from tvm.s_tir.schedule import LoopRV, SBlockRV

from cnncompile.backends.tvm.kernel import (
    CONV_STAGE, DILATE_STAGE, GEMM_STAGE, IM2COL_STAGE, PAD_STAGE, POOL_STAGE, SPECTRUM_STAGE, W_PACK_STAGE,
    WINOGRAD_CROP_STAGE, WINOGRAD_INPUT_STAGE, WINOGRAD_OUTPUT_STAGE, KernelKind,
)
from cnncompile.backends.tvm.plan import Template as ConvTemplate
from cnncompile.backends.tvm.tiling import ConvTile
from cnncompile.backends.tvm.schedule.cpu_common import (
    MIN_PARALLEL_WORK, accumulate_in_registers, blocks, extent, inline_injective, is_reduction, largest_divisor,
    padding, parallel_outer, parallel_reduction, schedule_rest, spatial_and_reduction, tile_columns, tile_rows,
    vector_factor,
)
from cnncompile.backends.tvm.schedule.cpu_algorithms import fft, register_tile, winograd, winograd_nchwc
from cnncompile.backends.tvm.schedule.cpu_layouts import conv_layout

# Window loops up to this many iterations are unrolled; a 7x7 average pool is not.
MAX_UNROLLED_WINDOW = 27
# Output rows per strip of a padded pool: with 2, ResNet's max pool ran in 0.17 ms, with 8 in 0.20 (the
# rows padded twice, a window's overlap, matter less than the strips to share among threads).
POOL_STRIP_ROWS = 2


def _conv(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile | None) -> None:
    """Plain direct convolution (depthwise, odd groups, weights given at run time): loops (n, o, *spatial,
    rc, *rk); per output channel, a tile of rows x one vector of columns, the window loops unrolled.

    Each window tap broadcasts one weight and loads one input vector per row, so every
    tap issues `rows` FMAs on independent accumulators.
    """
    spatial, reduction = spatial_and_reduction(sch, block)
    n, o, *positions = spatial
    *outer, cols = positions
    column_tile = tile_columns(extent(sch, cols), lanes)
    c_out, c_in = sch.split(cols, [None, column_tile])
    tiled_rows: list[LoopRV] = []
    if outer:
        rows = outer.pop()
        r_out, r_in = sch.split(rows, [None, tile_rows(extent(sch, rows), math.ceil(column_tile / lanes), lanes)])
        outer.append(r_out)
        tiled_rows = [r_in]
    sch.reorder(n, o, *outer, c_out, *reduction, *tiled_rows, c_in)
    tile_loop = sch.fuse(n, o, *outer, c_out)
    if math.prod(extent(sch, loop) for loop in sch.get_loops(block)) >= MIN_PARALLEL_WORK:
        sch.parallel(tile_loop)
    accumulate_in_registers(sch, block, tile_loop)
    for loop in [*reduction[1:], *tiled_rows]:
        sch.unroll(loop)
    sch.vectorize(c_in)
    sch.decompose_reduction(block, reduction[0])


def _gemm(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile | None) -> None:
    """(Batched) matrix product: loops (*batch, i, j, k); tile (rows of i x one vector of j), k outside.

    A matrix-vector or vector-vector product has fewer than two spatial loops; it runs as a
    plain reduction with its spatial loop in parallel.
    """
    spatial, reduction = spatial_and_reduction(sch, block)
    if len(spatial) < 2:
        parallel_reduction(sch, block)
        return
    *batch, rows, columns = spatial
    column_tile = tile_columns(extent(sch, columns), lanes)
    row_out, row_in = sch.split(rows, [None, tile_rows(extent(sch, rows), math.ceil(column_tile / lanes), lanes)])
    col_out, col_in = sch.split(columns, [None, column_tile])
    sch.reorder(*batch, row_out, col_out, *reduction, row_in, col_in)
    tile_loop = sch.fuse(*batch, row_out, col_out)
    if math.prod(extent(sch, loop) for loop in sch.get_loops(block)) >= MIN_PARALLEL_WORK:
        sch.parallel(tile_loop)
    accumulate_in_registers(sch, block, tile_loop)
    sch.unroll(row_in)
    sch.vectorize(col_in)
    sch.decompose_reduction(block, reduction[0])


def _conv_blocked(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile) -> None:
    """Blocked conv: loops (n, o, *spatial, rc, *rk); tile (channel block x rows x cols), the block vectorized.

    The accumulator is stored channel-block innermost ((n, o/B, *spatial, o%B)), so each
    vector FMA updates one contiguous register; the epilogue transposes it into NCHW
    once per tile. The block's vectors are unrolled, one vectorized loop each (see _gemm_blocked).
    """
    block_size = tile.vectors * lanes
    spatial, reduction = spatial_and_reduction(sch, block)
    n, o, *positions = spatial
    *outer, rows, cols = positions if len(positions) > 1 else [None, *positions]
    o_out, o_vectors, o_in = sch.split(o, [None, tile.vectors, lanes])
    c_out, c_in = sch.split(cols, [None, tile.cols])
    tiled_rows: list[LoopRV] = []
    if rows is not None:
        r_out, r_in = sch.split(rows, [None, tile.rows])
        tiled_rows = [r_in]
        outer = [*outer, r_out]
    sch.reorder(n, o_out, *outer, c_out, *reduction, *tiled_rows, c_in, o_vectors, o_in)
    tile_loop = sch.fuse(n, o_out, *outer, c_out)
    sch.parallel(tile_loop)
    finish = accumulate_in_registers(sch, block, tile_loop, vectorize_finish=False)
    sch.transform_layout(block, ("write", 0), _channel_block_last(block_size))
    for loop in [*reduction[1:], *tiled_rows, c_in, o_vectors]:
        sch.unroll(loop)
    sch.vectorize(o_in)
    sch.vectorize(sch.get_loops(finish)[-1])
    sch.decompose_reduction(block, reduction[0])


def _channel_block_last(block_size: int):
    """The index map (n, o, *p) -> (n, o // B, *p, o % B) of the accumulator."""

    def index_map(*index):
        n, o, *p = index
        return (n, o // block_size, *p, o % block_size)

    return index_map


def _gemm_blocked(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile) -> None:
    """Blocked GEMM over packed B: loops (i, j, k); tile (tile.cols rows x one column block of tile.vectors
    vectors), k outside, the vectors unrolled. One vectorized loop over the whole block would read B at
    j // 48 for a 3-vector block, which LLVM gets as a gather (an 8 x 1008 x 1280 product took 3.2 ms,
    0.17 so)."""
    (rows, cols), reduction = spatial_and_reduction(sch, block)
    r_out, r_in = sch.split(rows, [None, tile.cols])
    c_out, c_vectors, c_lanes = sch.split(cols, [None, tile.vectors, lanes])
    sch.reorder(r_out, c_out, *reduction, r_in, c_vectors, c_lanes)
    tile_loop = sch.fuse(r_out, c_out)
    sch.parallel(tile_loop)
    accumulate_in_registers(sch, block, tile_loop)
    sch.unroll(r_in)
    sch.unroll(c_vectors)
    sch.vectorize(c_lanes)
    sch.decompose_reduction(block, reduction[0])


def _pool(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile | None) -> None:
    """Windowed pooling: window loops moved outside the innermost output loop, which vectorizes. A padded
    input is padded strip by strip of output rows, each strip's rows in cache while the strip reads them:
    padding it whole first would be one more pass over memory (ResNet's 3x3/2 max pool took twice as long)."""
    spatial, window = spatial_and_reduction(sch, block)
    last = spatial[-1]
    factor = vector_factor(extent(sch, last), lanes)
    head, lane = sch.split(last, [None, factor])
    sch.reorder(head, *window, lane)
    work = math.prod(extent(sch, loop) for loop in sch.get_loops(block))
    pad = padding(sch, block)
    rows = None if pad is None else _first_pooled_axis(sch, block)
    if rows is None or rows == len(spatial) - 1:
        parallel_outer(sch, [*spatial[:-1], head], work)
    else:
        strips, _ = sch.split(spatial[rows], [None, largest_divisor(extent(sch, spatial[rows]), POOL_STRIP_ROWS)])
        strip = sch.fuse(*spatial[:rows], strips)
        if work >= MIN_PARALLEL_WORK:
            sch.parallel(strip)
        sch.compute_at(pad, strip)
        sch.vectorize(sch.get_loops(pad)[-1])
    if math.prod(extent(sch, loop) for loop in window) <= MAX_UNROLLED_WINDOW:
        for loop in window:
            sch.unroll(loop)
    if factor > 1:
        sch.vectorize(lane)
    sch.decompose_reduction(block, window[0])


def _first_pooled_axis(sch: Schedule, block: SBlockRV) -> int:
    """The output axis of the first windowed dim: the first index of the padded input that moves with the window."""
    stage = sch.get(block)
    window = {iv.var for iv in stage.iter_vars if iv.iter_type == tirx.IterVar.CommReduce}
    (region,) = (r for r in stage.reads if r.source.name == PAD_STAGE)
    return next(i for i, r in enumerate(region.region) if window & set(undefined_vars(r.min)))


@dataclass(frozen=True)
class Template:
    """A kind's anchor stage and how it is scheduled; `finishes` when it also places the anchor's consumer,
    `all_reductions` when it schedules every reduction stage of a multi-stage kernel itself, `owns`
    the other stages it schedules itself (kept from inlining)."""

    stage: str
    apply: Callable[[Schedule, SBlockRV, int, ConvTile | None], None]
    finishes: bool
    materialize: frozenset[str] = frozenset()
    all_reductions: bool = False
    owns: frozenset[str] = frozenset()


TEMPLATES: dict[KernelKind | ConvTemplate, Template] = {
    ConvTemplate.DIRECT: Template(CONV_STAGE, _conv, finishes=True, materialize=frozenset({PAD_STAGE, DILATE_STAGE})),
    ConvTemplate.DIRECT_BLOCKED: Template(CONV_STAGE, _conv_blocked, finishes=True, materialize=frozenset({PAD_STAGE})),
    ConvTemplate.DIRECT_STORED: Template(CONV_STAGE, conv_layout, finishes=True,
                                         materialize=frozenset({PAD_STAGE, W_PACK_STAGE})),
    KernelKind.GEMM: Template(GEMM_STAGE, _gemm, finishes=True),
    KernelKind.GEMM_BLOCKED: Template(GEMM_STAGE, _gemm_blocked, finishes=True),
    KernelKind.POOL: Template(POOL_STAGE, _pool, finishes=False, materialize=frozenset({PAD_STAGE})),
    ConvTemplate.GEMM: Template(GEMM_STAGE, register_tile, finishes=False, materialize=frozenset({IM2COL_STAGE})),
    ConvTemplate.WINOGRAD: Template(GEMM_STAGE, winograd, finishes=False, materialize=frozenset({PAD_STAGE}),
                                    all_reductions=True),
    ConvTemplate.WINOGRAD_BLOCKED: Template(GEMM_STAGE, winograd_nchwc, finishes=False,
                                            materialize=frozenset({PAD_STAGE, WINOGRAD_CROP_STAGE}),
                                            owns=frozenset({f"{WINOGRAD_INPUT_STAGE}_rows", WINOGRAD_INPUT_STAGE,
                                                            f"{WINOGRAD_OUTPUT_STAGE}_rows", WINOGRAD_OUTPUT_STAGE,
                                                            WINOGRAD_CROP_STAGE})),
    ConvTemplate.FFT: Template(SPECTRUM_STAGE, fft, finishes=False, materialize=frozenset({PAD_STAGE}),
                               all_reductions=True),
}


def schedule_cpu(func: tirx.PrimFunc, kind: KernelKind | ConvTemplate, lanes: int,
                 tile: ConvTile | None) -> tirx.PrimFunc:
    """Inline what can be, apply the kind's template to its anchor, and the generic schedule to the rest."""
    sch = Schedule(func)
    template = TEMPLATES.get(kind)
    inline_injective(sch, keep=template.materialize | template.owns if template else frozenset())
    skip: set[str] = set()
    if template is not None:
        anchor = sch.get_sblock(template.stage)
        skip.update({template.stage, *template.owns})
        if template.finishes:
            skip.update(sch.get(b).name_hint for b in sch.get_consumers(anchor))
        if template.all_reductions:
            skip.update(sch.get(b).name_hint for b in blocks(sch) if is_reduction(sch, b))
    schedule_rest(sch, lanes, frozenset(skip))
    if template is not None:
        template.apply(sch, sch.get_sblock(template.stage), lanes, tile)
    return sch.mod["main"]
