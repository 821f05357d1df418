"""CPU templates of the conv algorithms' kernels (lowering/conv_algorithms/), by plan template.

Their reductions are all GEMM-shaped: spatial loops (..., rows, columns) with the
columns contiguous in memory, and one or two reduction loops. `register_tile` gives each
a tile of (rows x a few vectors of columns) accumulators with the reductions outside
it, in parallel over tiles:

    GEMM        the GEMM (output channels x pixels); the epilogue is a pass of its own, since
                a tile of flattened pixels is no rectangle of the output it could be
                placed in
    WINOGRAD    the GEMM per transform point as above; each transform's two passes fused
                per (channel, vector of tiles), unrolled over the tile's points so the
                matrices fold to immediates, and vectorized over tiles
    WINOGRAD_BLOCKED  the GEMM per transform point as the direct NCHWc conv's register tile
                (vectors of output channels x Winograd tiles); each transform's two passes
                per (channel block, tile), unrolled over the points, vectorized over the block
    FFT         every DFT stage and the spectrum product (rows: the real/imaginary part)
"""

from __future__ import annotations

import math

from tvm.s_tir import Schedule
from tvm.s_tir.schedule import LoopRV, SBlockRV

from cnncompile.backends.tvm.kernel import WINOGRAD_CROP_STAGE, WINOGRAD_INPUT_STAGE, WINOGRAD_OUTPUT_STAGE
from cnncompile.backends.tvm.schedule.cpu_common import (
    MIN_PARALLEL_WORK, blocks, extent, is_reduction, largest_divisor, padding, parallel_vectorize,
    spatial_and_reduction, tile_columns, tile_rows, unroll_block, vectorize_below,
)
from cnncompile.backends.tvm.target import pool_threads
from cnncompile.backends.tvm.tiling import ConvTile, conv_tile


def _tile_shape(rows: int, columns: int, lanes: int, tile: ConvTile | None) -> tuple[int, int]:
    """(rows, columns) per tile: `tile` when given (the plan's: vectors of columns x tile.cols rows), else
    the register tile tiling.py ranks best (the FFT's stages), else one vector's worth of columns (a divisor
    when they do not fill one)."""
    tile = tile or conv_tile(columns, 1, rows, lanes)
    if tile is not None:
        return tile.cols, tile.vectors * lanes
    width = tile_columns(columns, lanes)
    return tile_rows(rows, math.ceil(width / lanes), lanes), width


def register_tile(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile | None = None) -> None:
    """Loops (*outer, rows, columns | reductions) -> parallel(outer, column tiles), row tiles, reductions
    (the first serial, the others unrolled), unrolled rows, vectorized columns.

    The row tiles of one column panel run back to back on one thread, so the panel (every
    reduction step of a few columns) is read from memory once and from cache after that.
    The accumulators live in a tile-sized buffer, copied out after the reduction (global scope:
    see cpu_common.accumulate_in_registers).
    """
    spatial, reduction = spatial_and_reduction(sch, block)
    *outer, rows, columns = spatial
    row_tile, column_tile = _tile_shape(extent(sch, rows), extent(sch, columns), lanes, tile)
    row_out, row_in = sch.split(rows, [None, row_tile])
    column_out, column_in = sch.split(columns, [None, column_tile])
    sch.reorder(*outer, column_out, row_out, *reduction, row_in, column_in)
    panel = sch.fuse(*outer, column_out)
    if math.prod(extent(sch, loop) for loop in sch.get_loops(block)) >= MIN_PARALLEL_WORK:
        sch.parallel(panel)
    sch.cache_write(block, 0, "global")
    copy = sch.get_consumers(block)[0]
    sch.reverse_compute_at(copy, row_out)
    vectorize_below(sch, copy, row_out)
    for loop in [*reduction[1:], row_in]:
        sch.unroll(loop)
    sch.vectorize(column_in)
    sch.decompose_reduction(block, reduction[0])


def _unrolled_pass(sch: Schedule, block: SBlockRV, loops: list[LoopRV], coefficients: list[LoopRV],
                   tiles: LoopRV) -> None:
    """Unroll a transform pass's points and coefficients, vectorize its tiles, split off its init."""
    for loop in [*loops, *coefficients]:
        sch.unroll(loop)
    sch.vectorize(tiles)
    sch.decompose_reduction(block, coefficients[0])


def _winograd_transform(sch: Schedule, first: SBlockRV, second: SBlockRV, lanes: int) -> None:
    """A transform in two passes of one matrix, loops (two points, channel, tiles | coefficient) each: per
    (channel, vector of tiles), the first pass computed into a tile-sized buffer right before the
    second reads it, the points and coefficients unrolled (the matrix folds into immediates and
    its zeros disappear), the tiles vectorized."""
    (point, other, channel, tiles), coefficients = spatial_and_reduction(sch, second)
    tile_out, tile_in = sch.split(tiles, [None, lanes])
    sch.reorder(channel, tile_out, point, other, *coefficients, tile_in)
    block_loop = sch.fuse(channel, tile_out)
    if math.prod(extent(sch, loop) for loop in sch.get_loops(second)) >= MIN_PARALLEL_WORK:
        sch.parallel(block_loop)
    sch.compute_at(first, block_loop)
    _unrolled_pass(sch, second, [point, other], coefficients, tile_in)
    (*_, first_point, first_other, first_tiles), first_coefficients = spatial_and_reduction(sch, first)
    sch.reorder(first_point, first_other, *first_coefficients, first_tiles)
    _unrolled_pass(sch, first, [first_point, first_other], first_coefficients, first_tiles)


def winograd(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile | None) -> None:
    """`block` is the GEMM (xi, nu, o, t | c), tiled by the plan; the transforms around it are scheduled here too."""
    register_tile(sch, block, lanes, tile)
    for stage in (WINOGRAD_INPUT_STAGE, WINOGRAD_OUTPUT_STAGE):
        _winograd_transform(sch, sch.get_sblock(f"{stage}_rows"), sch.get_sblock(stage), lanes)


def winograd_nchwc(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile | None) -> None:
    """`block` is the GEMM (xi, nu, ob, t, oi | cb, ci) of the NCHWc kernel: the direct NCHWc conv's
    register tile (`tile.vectors` output blocks x `tile.cols` Winograd tiles, one FMA per
    accumulator per input channel, the input block unrolled), run in parallel over one of two
    partitions with one transform inside it, each stage left outside a parallel pass of its own:
    every parallel launch costs ~30 us when the pool's workers sleep, as much as DenseNet's
    whole 128->32 3x3 at 14x14.

    With no more output channels than tiles (the transformed weights no larger than the
    transformed input), groups of `tile.cols` tiles run in parallel, each transforming its own
    input tiles first, which are in cache when its GEMM reads them. With more, each thread
    takes a group of output blocks (`_output_group`), reads its own weights and the shared
    transformed input, and transforms (and crops, where the tiles overhang the image) its own
    output. That replaced a GEMM in parallel over (point, output blocks, tiles) with the output
    transform and the crop as passes of their own: as fast alone, two launches fewer."""
    (xi, nu, blocks_, tiles, lanes_loop), (cb, ci) = spatial_and_reduction(sch, block)
    group = _output_group(extent(sch, blocks_), tile.vectors)
    by_tiles = extent(sch, blocks_) * extent(sch, lanes_loop) <= extent(sch, tiles) or group == extent(sch, blocks_)
    output_rows, output = sch.get_sblock(f"{WINOGRAD_OUTPUT_STAGE}_rows"), sch.get_sblock(WINOGRAD_OUTPUT_STAGE)
    crop = next((b for b in blocks(sch) if sch.get(b).name_hint == WINOGRAD_CROP_STAGE), None)
    sch.cache_write(block, 0, "global")
    copy = sch.get_consumers(block)[0]
    if by_tiles:
        if crop is not None:
            parallel_vectorize(sch, crop, lanes)
    else:
        panel = _split_output_blocks(sch, crop or output, group)
        for stage in ([output] if crop is not None else []) + [output_rows, copy, block]:
            sch.compute_at(stage, panel, preserve_unit_loops=True)
        if crop is not None:
            sch.vectorize(sch.get_loops(crop)[-1])
        xi, nu, blocks_, tiles, lanes_loop, cb, ci = _loops_below(sch, block, panel)
    block_out, block_in = sch.split(blocks_, [None, tile.vectors])
    tile_out, tile_in = sch.split(tiles, [None, tile.cols])
    if by_tiles:
        sch.reorder(tile_out, xi, nu, block_out, cb, ci, block_in, tile_in, lanes_loop)
        panel, finish_at = tile_out, block_out
    else:
        sch.reorder(xi, nu, block_out, tile_out, cb, ci, block_in, tile_in, lanes_loop)
        finish_at = tile_out
    sch.parallel(panel)
    sch.reverse_compute_at(copy, finish_at)
    vectorize_below(sch, copy, finish_at)
    unroll_block(sch, ci, [cb])
    for loop in (block_in, tile_in):
        sch.unroll(loop)
    sch.vectorize(lanes_loop)
    sch.decompose_reduction(block, cb)
    input_rows, input_ = sch.get_sblock(f"{WINOGRAD_INPUT_STAGE}_rows"), sch.get_sblock(WINOGRAD_INPUT_STAGE)
    if by_tiles:
        sch.compute_at(input_, panel, preserve_unit_loops=True)
    _blocked_transform(sch, input_rows, input_, (0, 1), at=panel if by_tiles else None)
    _blocked_transform(sch, output_rows, output, (3, 5), at=None if by_tiles else panel)


def _output_group(blocks_: int, vectors: int) -> int:
    """Output blocks per thread's group, a multiple of `vectors`: as few groups as there are threads,
    since every group reads the whole transformed input (one group per register tile's worth of output
    blocks timed 10-15% slower on ResNet-50's 256->256 at 14x14). A kernel built for a machine with
    other threads stays correct, only less balanced."""
    register_tiles = blocks_ // vectors
    return vectors * largest_divisor(register_tiles, max(register_tiles // pool_threads(), 1))


def _split_output_blocks(sch: Schedule, last: SBlockRV, group: int) -> LoopRV:
    """Split the kernel's last stage (n, output block, ...) into groups of `group` output blocks, outermost:
    the loop every other stage of a group is computed under."""
    n, blocks_, *rest = sch.get_loops(last)
    outer, inner = sch.split(blocks_, [None, group])
    sch.reorder(outer, n, inner, *rest)
    return outer


def _blocked_transform(sch: Schedule, first: SBlockRV, second: SBlockRV, points: tuple[int, int],
                       at: LoopRV | None = None) -> None:
    """A transform in two element-wise passes, the second's loops (*per tile with two `points` among them,
    channel block): per tile (in parallel, or serially under `at`, which the second is already under), the
    first pass computed right before the second reads it, the points unrolled (each copy a sum with
    immediate coefficients), the block vectorized. A padded input is padded tile by tile
    there too: padding it whole first cost a pass over memory and a parallel launch of its own."""
    *outer, lanes_loop = sch.get_loops(second) if at is None else _loops_below(sch, second, at)
    point_loops = [outer[i] for i in points]
    tile_loops = [loop for i, loop in enumerate(outer) if i not in points]
    sch.reorder(*tile_loops, *point_loops, lanes_loop)
    tile_loop = sch.fuse(*tile_loops)
    if at is None:
        sch.parallel(tile_loop)
    sch.compute_at(first, tile_loop)
    pad = padding(sch, first)
    if pad is not None:
        sch.compute_at(pad, tile_loop)
        sch.vectorize(sch.get_loops(pad)[-1])
    *first_points, first_lanes = _loops_below(sch, first, tile_loop)
    for loop in (*point_loops, *first_points):
        sch.unroll(loop)
    sch.vectorize(lanes_loop)
    sch.vectorize(first_lanes)


def _loops_below(sch: Schedule, block: SBlockRV, at: LoopRV) -> list[LoopRV]:
    """The block's loops nested inside `at` (those compute_at created for it)."""
    loops = sch.get_loops(block)
    position = next(i for i, loop in enumerate(loops) if sch.get(loop).same_as(sch.get(at)))
    return list(loops[position + 1:])


def fft(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile | None) -> None:
    """Every reduction (the DFTs and the spectrum product) as a register tile over (part, frequencies)."""
    for stage in [b for b in blocks(sch) if is_reduction(sch, b)]:
        register_tile(sch, stage, lanes)

