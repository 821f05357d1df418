"""The CPU template of convolutions stored in a layout (Template.DIRECT_STORED, lowering/conv_algorithms/direct.py).

The conv stage's loops are (n, oo, oh, ow, oi | reduction) in NCHWc and (n, oh, ow, o |
reduction) in NHWC: the output channels are the innermost loop and the innermost axis of
memory. A tile is `vectors` vectors of output channels x `rows` x `cols` output pixels:

    parallel (n, channel tiles, row tiles, column tiles), unless under MIN_PARALLEL_MACS
      reduction loops (input channels or blocks, window taps; an NCHWc input's block unrolled)
        unrolled (rows, cols, channel blocks of the tile)
          vectorized channels: one FMA per accumulator register

A one-row tile of a conv with a channel reduction runs over a flat stage, whose rows and
columns are one pixel axis (oh * OW + ow): the tile wraps from one output row to the next,
so its width need not divide OW (the lowering rounds the stage up to whole tiles). The
epilogue, which iterates over Y's rows and columns, is re-indexed to the same flat pixels
so that it still finishes the tile it follows, its pixels past the end predicated away.

Only the input block is unrolled: unrolling the window taps too lets LLVM keep the
broadcast inputs that neighbouring taps share, more than the registers hold, and the
spills cost more than the loads saved (3x3 64->64 at 56x56: ~65 -> ~80 GFLOP/s per core
unrolling the block alone). The pixels are unrolled outside the channel blocks, so each
broadcast input is used by all the tile's weight vectors at once and dies: with the
blocks outside, LLVM keeps every pixel's broadcast live across them and a 12-accumulator
tile spills (2 vectors x 2 x 3 pixels, 3x3 64->64 at 14x14: ~81 -> ~108 GFLOP/s).

Each reduction step loads the tile's weight vectors (contiguous, by the packing) and
broadcasts one input per pixel; a depthwise conv's step loads one input vector per pixel
instead. The accumulators stay in registers until the epilogue, which runs on the tile
right after the reduction and stores it in Y's layout as is.
"""

from __future__ import annotations

import math

from tvm.s_tir import Schedule
from tvm.s_tir.schedule import LoopRV, SBlockRV
from tvm.tirx import IndexMap

from cnncompile.backends.tvm.kernel import PAIR_AXIS
from cnncompile.backends.tvm.plan import BF16_LANES
from cnncompile.backends.tvm.schedule.cpu_bf16_dot import tensorize_pairs
from cnncompile.backends.tvm.schedule.cpu_common import (
    accumulate_in_registers, extent, largest_divisor, padding, spatial_and_reduction, unroll_block,
)
from cnncompile.backends.tvm.tiling import ConvTile, vector_width

# A depthwise conv pads its input strip by strip, each strip's rows in cache while the strip's tiles read
# them: this many output rows per strip keep the rows padded twice (a window's overlap) few.
STRIP_ROWS = 8
# Convs with fewer multiply-adds run on one thread: waking the pool's idle workers costs more than the
# second core saves (depthwise 3x3 on 960x7x7 with 2 threads: ~32 us, on one: ~17 us).
MIN_PARALLEL_MACS = 2**21


def conv_layout(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile) -> None:
    """The register tile above, its tiles (or strips) in parallel unless the conv is small; a conv without
    a channel reduction (depthwise) is run strip by strip of output rows, each strip padding the input
    rows it reads (the whole padded input would make one more pass over memory)."""
    spatial, reduction = spatial_and_reduction(sch, block)
    pair = [reduction.pop()] if reduction and sch.get(reduction[-1]).loop_var.name == PAIR_AXIS else []
    parallel = math.prod(extent(sch, loop) for loop in [*spatial, *reduction]) >= MIN_PARALLEL_MACS
    if _flatten_epilogue(sch, block):
        pixels, sizes = spatial[-2:-1], [tile.cols]
    else:
        pixels, sizes = spatial[-3:-1], [tile.rows, tile.cols]
    n, channels = spatial[0], spatial[-1]
    blocks = spatial[1] if len(spatial) == len(pixels) + 3 else None
    inner = extent(sch, channels)
    span = tile.vectors * vector_width(inner, lanes)
    outer: list[LoopRV] = []
    unrolled: list[LoopRV] = []
    if span < inner:
        channel_tiles, channels = sch.split(channels, [None, span])
        outer = [*([blocks] if blocks is not None else []), channel_tiles]
    elif blocks is not None:
        block_tiles, tile_blocks = sch.split(blocks, [None, span // inner])
        outer, unrolled = [block_tiles], [tile_blocks]
    pixel_tiles, tile_pixels = zip(*(sch.split(loop, [None, size]) for loop, size in zip(pixels, sizes)))
    if pair and extent(sch, channels) > BF16_LANES:
        vectors, channels = sch.split(channels, [None, BF16_LANES])
        unrolled.append(vectors)
    sch.reorder(n, *outer, *pixel_tiles, *reduction, *tile_pixels, *unrolled, channels, *pair)
    pad = padding(sch, block)
    if len(reduction) == 2 and pad is not None:
        row_tiles, col_tiles = pixel_tiles
        strips, _ = sch.split(row_tiles, [None, _strip(extent(sch, row_tiles), tile.rows)])
        strip = sch.fuse(n, *outer, strips)
        if parallel:
            sch.parallel(strip)
        sch.compute_at(pad, strip)
        sch.vectorize(sch.get_loops(pad)[-1])
        tile_loop = col_tiles
    else:
        tile_loop = sch.fuse(n, *outer, *pixel_tiles)
        if parallel:
            sch.parallel(tile_loop)
    accumulate_in_registers(sch, block, tile_loop)
    for loop in reduction[3:]:
        unroll_block(sch, loop, reduction[:3])
    for loop in [*tile_pixels, *unrolled]:
        sch.unroll(loop)
    if not pair:
        sch.vectorize(channels)
    sch.decompose_reduction(block, reduction[0])
    if pair:
        from_bf16 = any(str(region.source.dtype) == "bfloat16" for region in sch.get(block).reads)
        tensorize_pairs(sch, channels, tile_loop, from_bf16)


def _flatten_epilogue(sch: Schedule, block: SBlockRV) -> bool:
    """Whether the conv stage is flat (one pixel axis where Y has rows and columns); if so, its epilogue
    is re-indexed to iterate over the same flat pixels, so that it can finish tile by tile."""
    stage_rank = len(spatial_and_reduction(sch, block)[0])
    consumers = sch.get_consumers(block)
    if not consumers or len(sch.get_loops(consumers[0])) == stage_rank:
        return False
    (finish,) = consumers
    rows_axis = stage_rank - 2
    cols = extent(sch, sch.get_loops(finish)[rows_axis + 1])
    flatten = IndexMap.from_func(lambda *index: (*index[:rows_axis], index[rows_axis] * cols + index[rows_axis + 1],
                                                 *index[rows_axis + 2:]), ndim=stage_rank + 1, index_dtype="int32")
    sch.transform_block_layout(finish, flatten)
    return True


def _strip(row_tiles: int, rows: int) -> int:
    """Row tiles per strip: the most that cover at most STRIP_ROWS output rows."""
    return largest_divisor(row_tiles, STRIP_ROWS // rows)

