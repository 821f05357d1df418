"""Convolutions whose output is stored in a layout: Y in NCHWc or NHWC, X in NCHW or Y's kind.

The output's channels are the vector dimension, innermost in memory, so the accumulator
tile a CPU keeps in registers is already in Y's order and the epilogue (bias, residual
in Y's layout, activation) writes it out directly, with no transpose:

    NCHWc  conv[n, oo, oh, ow, oi] = sum_{rco, kh, kw, rci} X[n, g + rco, h, w, rci] * W[oo, rco, kh, kw, rci, oi]
           with X in NCHW{ib}c (ib may differ from Y's block ob; X in NCHW reads X[n, c, h, w])
           and the weights repacked at build time to (O/ob, C/G/ib, kh, kw, ib, ob)
    NHWC   conv[n, oh, ow, o] = sum_{rc, kh, kw} X[n, h, w, c] * W[kh, kw, rc, o], W repacked to (kh, kw, C/G, O)

A depthwise conv (one input and one output channel per group) has no channel reduction:
each output channel reads its own input channel, so NCHWc's block is a vector of input
channels too (out[n, co, oh, ow, ci] = sum_{kh, kw} X[n, co, h, w, ci] * W[co, kh, kw, ci]).
A grouped conv whose groups split an output block (the block's lanes would read
different input blocks) runs as a plain direct conv over Y's layout instead.

Weights given at run time are packed by a `w_pack` stage of the kernel itself. On a CPU
the kernel carries its register tile: `vectors` vectors of output channels (each
`vector_width` channels) x `rows` x `cols` output pixels, from attrs.tile when tuning
chose one, else from tiling.py (`layout_tiles`). A one-row tile of a conv with a channel
reduction makes the conv stage flat, its rows and columns one pixel axis p = oh * OW + ow
rounded up to whole tiles (conv[n, oo, p, oi] in NCHWc), so that a tile's width need not
divide OW: tiles wrap from one row to the next, the last one's extra pixels recompute the
last pixel, and the epilogue, always present then, writes Y's pixels only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import CONV_STAGE, Call, Kernel, KernelKind, Repack
from cnncompile.backends.tvm.lowering.common import const
from cnncompile.backends.tvm.lowering.epilogue import Epilogue
from cnncompile.backends.tvm.lowering.layouts import pad_spatial, physical_index, physical_shape
from cnncompile.backends.tvm.tiling import ConvTile, layout_tiles, requested_tile, vector_width
from cnncompile.errors import AttrError
from cnncompile.ir.types import Layout, LayoutKind, storage
from cnncompile.ops.fused import Activation
from cnncompile.ops.spatial import Window, resolve_window

# A depthwise tile's accumulators: one input load per FMA leaves registers for this many.
DEPTHWISE_ACCUMULATORS = 12
# Output columns a depthwise tile spans at most: consecutive columns share input vectors across taps.
DEPTHWISE_COLUMNS = 8


@dataclass(frozen=True)
class _Conv:
    """What every form of the conv needs: the padded input, the layouts and the channel counts."""

    x: te.Tensor            # padded, in the source layout
    source: Layout | None   # X's layout (None: NCHW)
    layout: Layout          # Y's layout
    window: Window
    out_shape: tuple[int, ...]   # Y's physical shape
    out_channels: int
    group_in: int
    group_out: int
    group: int
    pixels: int | None = None   # a flat stage's extent: Y's pixels row after row, rounded up to whole tiles

    @property
    def depthwise(self) -> bool:
        return self.group_in == 1 and self.group_out == 1

    @property
    def rows_axis(self) -> int:
        """Y's axis of output rows; the columns follow it."""
        return 2 if self.layout.kind is LayoutKind.NCHWC else 1

    @property
    def out_size(self) -> tuple[int, int]:
        return self.out_shape[self.rows_axis], self.out_shape[self.rows_axis + 1]

    @property
    def stage_shape(self) -> tuple[int, ...]:
        """The conv stage's shape: Y's, or with the rows and columns flattened into `pixels`."""
        if self.pixels is None:
            return self.out_shape
        axis = self.rows_axis
        return (*self.out_shape[:axis], self.pixels, *self.out_shape[axis + 2:])

    def output_pixel(self, spatial: tuple[tirx.Expr, ...]) -> tuple[tirx.Expr, tirx.Expr]:
        """The (row, column) of Y a stage index's spatial part computes; a flat stage's pixels past the
        end (in its last tile) compute the last pixel again, and the epilogue drops them."""
        if self.pixels is None:
            return spatial
        (p,) = spatial
        rows, cols = self.out_size
        q = tirx.min(p, rows * cols - 1) if self.pixels > rows * cols else p
        return q // cols, q % cols

    def stage_index(self, index: tuple[tirx.Expr, ...]) -> tuple[tirx.Expr, ...]:
        """The conv stage's index of Y's element `index`."""
        if self.pixels is None:
            return index
        axis = self.rows_axis
        return (*index[:axis], index[axis] * self.out_size[1] + index[axis + 1], *index[axis + 2:])

    def position(self, p: tirx.Expr, k: tirx.Expr, axis: int) -> tirx.Expr:
        """The padded input's row (axis 0) or column (axis 1) that output p reads at tap k."""
        return p * self.window.strides[axis] + k * self.window.dilations[axis]

    def read(self, n, c, h, w) -> tirx.Expr:
        """X at logical channel c, padded position (h, w), wherever its layout puts it."""
        return self.x[physical_index(self.source, (n, c, h, w))]


def lower(call: Call, kind: Activation, activation_attrs: object) -> Kernel:
    """A Conv or FusedConv whose output type carries an NCHWc or NHWC layout."""
    x_type, w_type = call.in_types[:2]
    attrs = call.attrs
    window = resolve_window("Conv", x_type.shape[2:], w_type.shape[2:], attrs.strides, attrs.dilations,
                            attrs.pads, attrs.auto_pad)
    source = storage(x_type)
    x = call.inputs[0]
    padded = pad_spatial(x, source, window.pads_begin, window.pads_end, const(0, x.dtype))
    out_channels, group_in = w_type.shape[:2]
    conv = _Conv(padded, source, storage(call.out_types[0]), window, physical_shape(call.out_types[0]),
                 out_channels, group_in, out_channels // attrs.group, attrs.group)
    kernel = Kernel([], KernelKind.CONV_LAYOUT)
    split_blocks = conv.layout.kind is LayoutKind.NCHWC and not conv.depthwise and conv.group > 1 \
        and conv.group_out % conv.layout.block != 0
    if call.lanes is not None and not split_blocks:
        kernel.tile = _tile(call, conv)
        if _flat(kernel.tile, conv):
            conv = replace(conv, pixels=math.ceil(math.prod(conv.out_size) / kernel.tile.cols) * kernel.tile.cols)
    if conv.layout.kind is LayoutKind.NHWC:
        result = _depthwise_nhwc(kernel, call, conv) if conv.depthwise else _nhwc(kernel, call, conv)
    elif conv.depthwise:
        result = _depthwise_nchwc(kernel, call, conv)
    elif not split_blocks:
        result = _nchwc(kernel, call, conv)
    else:
        kernel.kind = KernelKind.CONV
        result = _split_blocks(call, conv)
    bias = call.inputs[2] if len(call.inputs) > 2 else None
    residual = call.inputs[3] if len(call.inputs) > 3 else None
    kernel.outputs.append(_epilogue(result, conv, bias, residual, kind, activation_attrs))
    return kernel


def _weights(kernel: Kernel, call: Call, shape: tuple[int, ...], transform: Repack,
             read: Callable[..., tirx.Expr]) -> te.Tensor:
    """The weights in the packed `shape`: repacked at build time when constant, else by a `w_pack` stage."""
    w = call.inputs[1]
    if call.constant[1]:
        return kernel.repack(1, shape, str(w.dtype), transform, "w_packed")
    return te.compute(shape, read, name="w_pack")


def _nchwc(kernel: Kernel, call: Call, conv: _Conv) -> te.Tensor:
    ob = conv.layout.block
    blocked_source = conv.source is not None and conv.source.kind is LayoutKind.NCHWC
    ib = conv.source.block if blocked_source and conv.group_in % conv.source.block == 0 else 1
    kh, kw = conv.window.kernel
    w = call.inputs[1]
    shape = (conv.out_channels // ob, conv.group_in // ib, kh, kw, ib, ob)

    def pack(array: np.ndarray) -> np.ndarray:
        o, c = array.shape[:2]
        blocked = array.reshape(o // ob, ob, c // ib, ib, kh, kw)
        return np.ascontiguousarray(blocked.transpose(0, 2, 4, 5, 3, 1))

    packed = _weights(kernel, call, shape, pack,
                      lambda oo, co, i, j, ci, oi: w[oo * ob + oi, co * ib + ci, i, j])
    rco = te.reduce_axis((0, conv.group_in // ib), name="rco")
    rkh, rkw = te.reduce_axis((0, kh), name="rkh"), te.reduce_axis((0, kw), name="rkw")
    rci = te.reduce_axis((0, ib), name="rci") if ib > 1 else None
    blocks_per_group = conv.group_out // ob

    def compute(*index):
        n, oo, *pixel, oi = index
        group = oo // blocks_per_group if conv.group > 1 else 0
        oh, ow = conv.output_pixel(pixel)
        h, x = conv.position(oh, rkh, 0), conv.position(ow, rkw, 1)
        if ib > 1:
            value = conv.x[n, group * (conv.group_in // ib) + rco, h, x, rci]
        else:
            channel = group * conv.group_in + (rco * ib + rci if rci is not None else rco)
            value = conv.read(n, channel, h, x)
        weight = packed[oo, rco, rkh, rkw, rci if rci is not None else 0, oi]
        return te.sum(value * weight, axis=[rco, rkh, rkw, *([rci] if rci is not None else [])])

    return te.compute(conv.stage_shape, compute, name=CONV_STAGE)


def _nhwc(kernel: Kernel, call: Call, conv: _Conv) -> te.Tensor:
    kh, kw = conv.window.kernel
    w = call.inputs[1]
    packed = _weights(kernel, call, (kh, kw, conv.group_in, conv.out_channels),
                      lambda array: np.ascontiguousarray(array.transpose(2, 3, 1, 0)),
                      lambda i, j, c, o: w[o, c, i, j])
    rc = te.reduce_axis((0, conv.group_in), name="rc")
    rkh, rkw = te.reduce_axis((0, kh), name="rkh"), te.reduce_axis((0, kw), name="rkw")

    def compute(*index):
        n, *pixel, o = index
        oh, ow = conv.output_pixel(pixel)
        channel = (o // conv.group_out) * conv.group_in + rc if conv.group > 1 else rc
        value = conv.read(n, channel, conv.position(oh, rkh, 0), conv.position(ow, rkw, 1))
        return te.sum(value * packed[rkh, rkw, rc, o], axis=[rc, rkh, rkw])

    return te.compute(conv.stage_shape, compute, name=CONV_STAGE)


def _depthwise_nchwc(kernel: Kernel, call: Call, conv: _Conv) -> te.Tensor:
    ob = conv.layout.block
    kh, kw = conv.window.kernel
    w = call.inputs[1]
    packed = _weights(kernel, call, (conv.out_channels // ob, kh, kw, ob),
                      lambda array: np.ascontiguousarray(array.reshape(-1, ob, kh, kw).transpose(0, 2, 3, 1)),
                      lambda co, i, j, ci: w[co * ob + ci, 0, i, j])
    rkh, rkw = te.reduce_axis((0, kh), name="rkh"), te.reduce_axis((0, kw), name="rkw")
    same_blocks = conv.source == conv.layout

    def compute(n, co, oh, ow, ci):
        h, x = conv.position(oh, rkh, 0), conv.position(ow, rkw, 1)
        value = conv.x[n, co, h, x, ci] if same_blocks else conv.read(n, co * ob + ci, h, x)
        return te.sum(value * packed[co, rkh, rkw, ci], axis=[rkh, rkw])

    return te.compute(conv.stage_shape, compute, name=CONV_STAGE)


def _depthwise_nhwc(kernel: Kernel, call: Call, conv: _Conv) -> te.Tensor:
    kh, kw = conv.window.kernel
    w = call.inputs[1]
    packed = _weights(kernel, call, (kh, kw, conv.out_channels),
                      lambda array: np.ascontiguousarray(array[:, 0].transpose(1, 2, 0)),
                      lambda i, j, c: w[c, 0, i, j])
    rkh, rkw = te.reduce_axis((0, kh), name="rkh"), te.reduce_axis((0, kw), name="rkw")

    def compute(n, oh, ow, c):
        value = conv.read(n, c, conv.position(oh, rkh, 0), conv.position(ow, rkw, 1))
        return te.sum(value * packed[rkh, rkw, c], axis=[rkh, rkw])

    return te.compute(conv.stage_shape, compute, name=CONV_STAGE)


def _split_blocks(call: Call, conv: _Conv) -> te.Tensor:
    """NCHWc whose groups split a block: each lane finds its own group; the plain CONV schedule runs it."""
    w = call.inputs[1]
    ob = conv.layout.block
    kh, kw = conv.window.kernel
    rc = te.reduce_axis((0, conv.group_in), name="rc")
    rkh, rkw = te.reduce_axis((0, kh), name="rkh"), te.reduce_axis((0, kw), name="rkw")

    def compute(n, oo, oh, ow, oi):
        o = oo * ob + oi
        channel = (o // conv.group_out) * conv.group_in + rc
        value = conv.read(n, channel, conv.position(oh, rkh, 0), conv.position(ow, rkw, 1))
        return te.sum(value * w[o, rc, rkh, rkw], axis=[rc, rkh, rkw])

    return te.compute(conv.stage_shape, compute, name=CONV_STAGE)


def _epilogue(stage: te.Tensor, conv: _Conv, bias: te.Tensor | None, residual: te.Tensor | None,
              kind: Activation, activation_attrs: object) -> te.Tensor:
    """activation(conv + bias[channel] + residual), in Y's layout and shape; the conv stage itself when
    nothing is added and it has Y's shape."""
    epilogue = Epilogue(bias, residual, kind, activation_attrs)
    if epilogue.empty and conv.pixels is None:
        return stage
    return epilogue.finish_stored(lambda *index: stage[conv.stage_index(index)], conv.out_shape, conv.layout)


def _channel_loop(conv: _Conv) -> tuple[int, int]:
    """(the vectorized channel loop's extent, the channels a tile's vectors must divide)."""
    if conv.layout.kind is LayoutKind.NHWC:
        return conv.out_channels, conv.out_channels
    return conv.layout.block, conv.group_out if conv.group > 1 and not conv.depthwise else conv.out_channels


def _flat(tile: ConvTile, conv: _Conv) -> bool:
    """Whether the conv stage runs over Y's pixels flattened, its one-row tiles wrapping from one output row
    to the next: every conv with a channel reduction does (the last tile may run past the end), so that
    the best number of columns need not divide the width."""
    return tile.rows == 1 and not conv.depthwise


def _fits(tile: ConvTile, conv: _Conv, lanes: int) -> str | None:
    """None when `tile` covers the conv's channels with whole vectors and its output with whole tiles (a
    flat tile's columns need only fit in the image), else why not."""
    inner, channels = _channel_loop(conv)
    span = tile.vectors * vector_width(inner, lanes)
    rows, cols = conv.out_size
    if channels % span or (span % inner and inner % span):
        return f"{tile.vectors} vectors span {span} channels, which must divide {channels} and fit blocks of {inner}"
    if _flat(tile, conv):
        return None if tile.cols <= rows * cols else f"{tile.cols} columns exceed the {rows}x{cols} output"
    if rows % tile.rows or cols % tile.cols:
        return f"{tile.rows} rows x {tile.cols} columns do not divide the {rows}x{cols} output"
    return None


def _tile(call: Call, conv: _Conv) -> ConvTile:
    """attrs.tile (vectors, rows, cols) when tuning chose one, checked; else the heuristic tile."""
    lanes = call.lanes
    chosen = tuple(getattr(call.attrs, "tile", ()))
    if chosen:
        tile = requested_tile(chosen)
        reason = _fits(tile, conv, lanes)
        if reason is not None:
            raise AttrError(f"tile {list(chosen)} does not fit the conv: {reason}")
        return tile
    inner, channels = _channel_loop(conv)
    width = vector_width(inner, lanes)
    rows, cols = conv.out_size
    if conv.depthwise:
        return _depthwise_tile(max(inner // width, 1) if conv.layout.kind is LayoutKind.NCHWC else 1, rows, cols)
    return next(t for t in layout_tiles(channels, rows, cols, width) if _fits(t, conv, lanes) is None)


def _depthwise_tile(vectors: int, rows: int, cols: int) -> ConvTile:
    """A strip of up to DEPTHWISE_COLUMNS columns, and as many rows as the accumulators allow."""
    columns = max(d for d in range(1, min(cols, DEPTHWISE_COLUMNS) + 1) if cols % d == 0)
    budget = max(DEPTHWISE_ACCUMULATORS // (vectors * columns), 1)
    return ConvTile(vectors, max(d for d in range(1, min(rows, budget) + 1) if rows % d == 0), columns)
