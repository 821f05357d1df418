"""The CPU template of convolutions stored in a layout (KernelKind.CONV_LAYOUT, lowering/conv_layouts.py).

The conv stage's loops are (n, oo, oh, ow, oi | reduction) in NCHWc and (n, oh, ow, o |
reduction) in NHWC: the output channels are the innermost loop and the innermost axis of
memory. A tile is `vectors` vectors of output channels x `rows` x `cols` output pixels:

    parallel (n, channel tiles, row tiles, column tiles)
      reduction loops (input channels or blocks, window taps; an NCHWc input's block unrolled)
        unrolled (channel blocks of the tile, rows, cols)
          vectorized channels: one FMA per accumulator register

Only the input block is unrolled: unrolling the window taps too lets LLVM keep the
broadcast inputs that neighbouring taps share, more than the registers hold, and the
spills cost more than the loads saved (3x3 64->64 at 56x56: ~65 -> ~80 GFLOP/s per core
unrolling the block alone).

Each reduction step loads the tile's weight vectors (contiguous, by the packing) and
broadcasts one input per pixel; a depthwise conv's step loads one input vector per pixel
instead. The accumulators stay in registers until the epilogue, which runs on the tile
right after the reduction and stores it in Y's layout as is.
"""

from __future__ import annotations

from tvm.s_tir import Schedule
from tvm.s_tir.schedule import LoopRV, SBlockRV

from cnncompile.backends.tvm.schedule.cpu_common import accumulate_in_registers, extent, spatial_and_reduction
from cnncompile.backends.tvm.tiling import ConvTile, vector_width

# A depthwise conv pads its input strip by strip, each strip's rows in cache while the strip's tiles read
# them: this many output rows per strip keep the rows padded twice (a window's overlap) few.
STRIP_ROWS = 8


def conv_layout(sch: Schedule, block: SBlockRV, lanes: int, tile: ConvTile) -> None:
    """The register tile above; a conv without a channel reduction (depthwise) is run strip by strip of
    output rows, each strip padding the input rows it reads (the whole padded input would make one more
    pass over memory)."""
    spatial, reduction = spatial_and_reduction(sch, block)
    if len(spatial) == 5:
        n, blocks, rows, cols, channels = spatial
    else:
        (n, rows, cols, channels), blocks = spatial, None
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
    row_tiles, tile_rows = sch.split(rows, [None, tile.rows])
    col_tiles, tile_cols = sch.split(cols, [None, tile.cols])
    sch.reorder(n, *outer, row_tiles, col_tiles, *reduction, *unrolled, tile_rows, tile_cols, channels)
    pad = _padding(sch, block)
    if len(reduction) == 2 and pad is not None:
        strips, _ = sch.split(row_tiles, [None, _strip(extent(sch, row_tiles), tile.rows)])
        strip = sch.fuse(n, *outer, strips)
        sch.parallel(strip)
        sch.compute_at(pad, strip)
        sch.vectorize(sch.get_loops(pad)[-1])
        tile_loop = col_tiles
    else:
        tile_loop = sch.fuse(n, *outer, row_tiles, col_tiles)
        sch.parallel(tile_loop)
    accumulate_in_registers(sch, block, tile_loop)
    input_block = reduction[3:]
    for loop in [*input_block, *unrolled, tile_rows, tile_cols]:
        sch.unroll(loop)
    sch.vectorize(channels)
    sch.decompose_reduction(block, reduction[0])


def _strip(row_tiles: int, rows: int) -> int:
    """Row tiles per strip: the most that cover at most STRIP_ROWS output rows."""
    return max(d for d in range(1, max(STRIP_ROWS // rows, 1) + 1) if row_tiles % d == 0 and d <= row_tiles)


def _padding(sch: Schedule, block: SBlockRV) -> SBlockRV | None:
    """The conv's materialized `pad` producer, if its input is padded."""
    return next((p for p in sch.get_producers(block) if sch.get(p).name_hint == "pad"), None)

