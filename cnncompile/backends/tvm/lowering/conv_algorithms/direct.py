"""direct (and depthwise): the convolution's definition, one compute for every layout and template.

    conv[n, o, *p] = sum_{c, k} X[n, g(o) * C/G + c, p * s + k * d] * W[o, c, k]

The stage iterates Y's physical index and reads X and W through index maps, so a layout
is a change of maps, not of compute:

* Y's index gives the logical output (n, o, *p) and the channel parts the weights are
  indexed by: (n, o, *p) in NCHW, (n, oo, *p, oi) in NCHWc, (n, *p, o) in NHWC; a flat
  stage (plan.flat) has one pixel axis where Y has rows and columns.
* X is read at its logical position wherever its layout puts it (`physical_index`); an
  NCHWc input whose block divides the group's channels is read block by block, the block
  reduced innermost (`rci`), so the stage's loops are (..., rco, kh, kw, rci).
* W is read in the plan's `WeightForm`, repacked at build time when constant, else by a
  `w_pack` stage of the kernel (the blocked NCHW form needs constants: plan.py).

A depthwise-shaped conv (one input channel per group) has no channel reduction: output
channel o reads input channel o / multiplier. Where an output-channel vector's lanes share
one group, the group is computed from the vector's index, so that it is visibly the same
for every lane. The epilogue (bias, residual, activation) follows as one stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import CONV_STAGE, PAIR_AXIS, W_PACK_STAGE, Kernel, shape_of
from cnncompile.backends.tvm.lowering.common import bf16_bits_value, const, dtype_of
from cnncompile.backends.tvm.lowering.conv_algorithms.problem import ConvProblem
from cnncompile.backends.tvm.lowering.layouts import pad_spatial, physical_index, physical_shape
from cnncompile.backends.tvm.plan import Dot, Template, WeightForm
from cnncompile.ir.types import DType, LayoutKind


@dataclass(frozen=True)
class _Packing:
    """A WeightForm's array: its shape, the NumPy repacking of a constant, and its logical source element."""

    shape: Callable[[ConvProblem], tuple[int, ...]]
    pack: Callable[[np.ndarray, ConvProblem], np.ndarray]
    source: Callable[[ConvProblem, tuple[tirx.Expr, ...]], tuple[tirx.Expr, ...]]  # packed index -> W index


def _output_block(p: ConvProblem) -> int:
    """The blocked NCHW form's block: the register tile's output channels."""
    return p.plan.tile.vectors * p.call.lanes


def _in_block(p: ConvProblem) -> int:
    """The input block an NCHWc-stored conv reduces innermost: X's block when it divides a group's channels."""
    source = p.plan.source
    if source is not None and source.kind is LayoutKind.NCHWC and p.group_in % source.block == 0:
        return source.block
    return 1


def _nchwc_pack(w: np.ndarray, p: ConvProblem) -> np.ndarray:
    ob, ib = p.plan.layout.block, _in_block(p)
    o, c, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(o // ob, ob, c // ib, ib, kh, kw).transpose(0, 2, 4, 5, 3, 1))


def _pairs_pack(w: np.ndarray, p: ConvProblem) -> np.ndarray:
    """NCHWC_BLOCKS with each output channel's pair of input channels adjacent: one vdpbf16ps operand."""
    blocks = _nchwc_pack(w, p)
    *outer, ib, ob = blocks.shape
    return np.ascontiguousarray(blocks.reshape(*outer, ib // 2, 2, ob).swapaxes(-1, -2))


def pack_output_blocks(w: np.ndarray, block: int) -> np.ndarray:
    """(O, C, *k) -> (O/block, C, *k, block): one block of output channels contiguous per weight tap."""
    o, *rest = w.shape
    return np.ascontiguousarray(np.moveaxis(w.reshape(o // block, block, *rest), 1, -1))


_PACKINGS: dict[WeightForm, _Packing] = {
    WeightForm.OUTPUT_BLOCKS: _Packing(
        lambda p: (p.out_shape[1] // _output_block(p), p.group_in, *p.taps, _output_block(p)),
        lambda w, p: pack_output_blocks(w, _output_block(p)),
        lambda p, i: (i[0] * _output_block(p) + i[-1], i[1], *i[2:-1])),
    WeightForm.NCHWC_BLOCKS: _Packing(
        lambda p: (p.out_shape[1] // p.plan.layout.block, p.group_in // _in_block(p), *p.taps, _in_block(p),
                   p.plan.layout.block),
        _nchwc_pack,
        lambda p, i: (i[0] * p.plan.layout.block + i[5], i[1] * _in_block(p) + i[4], i[2], i[3])),
    WeightForm.NCHWC_PAIRS: _Packing(
        lambda p: (p.out_shape[1] // p.plan.layout.block, p.group_in // _in_block(p), *p.taps, _in_block(p) // 2,
                   p.plan.layout.block, 2),
        _pairs_pack,
        lambda p, i: (i[0] * p.plan.layout.block + i[5], i[1] * _in_block(p) + i[4] * 2 + i[6], i[2], i[3])),
    WeightForm.NHWC: _Packing(
        lambda p: (*p.taps, p.group_in, p.out_shape[1]),
        lambda w, p: np.ascontiguousarray(w.transpose(2, 3, 1, 0)),
        lambda p, i: (i[3], i[2], i[0], i[1])),
    WeightForm.DEPTHWISE_NCHWC: _Packing(
        lambda p: (p.out_shape[1] // p.plan.layout.block, *p.taps, p.plan.layout.block),
        lambda w, p: np.ascontiguousarray(w.reshape(-1, p.plan.layout.block, *w.shape[2:]).transpose(0, 2, 3, 1)),
        lambda p, i: (i[0] * p.plan.layout.block + i[3], 0, i[1], i[2])),
    WeightForm.DEPTHWISE_NHWC: _Packing(
        lambda p: (*p.taps, p.out_shape[1]),
        lambda w, p: np.ascontiguousarray(w[:, 0].transpose(1, 2, 0)),
        lambda p, i: (i[2], 0, i[0], i[1])),
}


def _weights(kernel: Kernel, p: ConvProblem) -> te.Tensor:
    """W in the plan's form: the input itself, repacked at build time, or packed by a `w_pack` stage."""
    form = p.plan.weights
    if form is WeightForm.AS_GIVEN:
        return p.w
    packing = _PACKINGS[form]
    if form is WeightForm.NCHWC_PAIRS:  # the bits, as X's (`_padded_bits`)
        return kernel.repack(1, packing.shape(p), "uint16",
                             lambda w: packing.pack(w, p).astype(DType.BFLOAT16.numpy).view(np.uint16), "w_packed")
    if p.plan.packed_at_build_time:
        return kernel.repack(1, packing.shape(p), p.dtype, lambda w: packing.pack(w, p), "w_packed")
    return te.compute(packing.shape(p), lambda *i: p.w[packing.source(p, i)], name=W_PACK_STAGE)


@dataclass(frozen=True)
class _Output:
    """Where one element of the stage lies in the logical output, and the parts the weights index it by."""

    n: tirx.Expr
    pixel: tuple[tirx.Expr, ...]     # the output's spatial position
    group: tirx.Expr | int           # the output channel's group
    channel: tuple[tirx.Expr, ...]   # the output channel as the weight form indexes it
    logical: tirx.Expr               # the output channel


def _decode(p: ConvProblem, index: Sequence[tirx.Expr]) -> _Output:
    """The stage index in Y's layout (NCHW, NCHWc or NHWC; rows and columns flat when the plan says)."""
    layout, form = p.plan.layout, p.plan.weights

    def group(of: tirx.Expr, per_group: int) -> tirx.Expr | int:
        return of // per_group if p.group > 1 else 0

    if layout is None:
        n, o, *pixel = index
        if form is WeightForm.OUTPUT_BLOCKS:
            block = _output_block(p)
            return _Output(n, tuple(pixel), group(o // block, p.group_out // block), (o // block, o % block), o)
        return _Output(n, tuple(pixel), group(o, p.group_out), (o,), o)
    if layout.kind is LayoutKind.NHWC:
        n, *pixel, o = index
        return _Output(n, _pixel(p, pixel), group(o, p.group_out), (o,), o)
    n, oo, *pixel, oi = index
    o = oo * layout.block + oi
    if form is WeightForm.AS_GIVEN:  # groups split the block: each lane finds its own
        return _Output(n, _pixel(p, pixel), group(o, p.group_out), (o,), o)
    return _Output(n, _pixel(p, pixel), group(oo, max(p.group_out // layout.block, 1)), (oo, oi), o)


def _pixel(p: ConvProblem, pixel: Sequence[tirx.Expr]) -> tuple[tirx.Expr, ...]:
    """A stored stage's (row, column); a flat stage's pixels past the end (in its last tile) compute the last
    pixel again, and the epilogue drops them."""
    if not p.plan.flat:
        return tuple(pixel)
    (q,) = pixel
    rows, cols = p.out_shape[2:]
    last = rows * cols - 1
    q = tirx.min(q, last) if _flat_pixels(p) > rows * cols else q
    return q // cols, q % cols


def _flat_pixels(p: ConvProblem) -> int:
    """A flat stage's pixel extent: Y's pixels row after row, rounded up to whole tiles."""
    rows, cols = p.out_shape[2:]
    return -(-(rows * cols) // p.plan.tile.cols) * p.plan.tile.cols


def _stage_shape(p: ConvProblem) -> tuple[int, ...]:
    shape = physical_shape(p.call.out_types[0])
    if not p.plan.flat:
        return shape
    axis = 2 if p.plan.layout.kind is LayoutKind.NCHWC else 1
    return (*shape[:axis], _flat_pixels(p), *shape[axis + 2:])


def _read_weight(p: ConvProblem, w: te.Tensor, out: _Output, rco: tirx.Expr | int, rci: tirx.Expr | int,
                 rk: Sequence[tirx.Expr], block_axes: Sequence[tirx.Expr]) -> tirx.Expr:
    form = p.plan.weights
    if form is WeightForm.AS_GIVEN:
        return w[(out.logical, rco, *rk)]
    if form is WeightForm.OUTPUT_BLOCKS:
        return w[(out.channel[0], rco, *rk, out.channel[1])]
    if form is WeightForm.NCHWC_BLOCKS:
        return w[(out.channel[0], rco, *rk, rci, out.channel[1])]
    if form is WeightForm.NCHWC_PAIRS:
        pair, half = block_axes
        return w[(out.channel[0], rco, *rk, pair, out.channel[1], half)]
    if form is WeightForm.NHWC:
        return w[(*rk, rco, out.logical)]
    if form is WeightForm.DEPTHWISE_NCHWC:
        return w[(out.channel[0], *rk, out.channel[1])]
    return w[(*rk, out.logical)]


def direct(p: ConvProblem) -> Kernel:
    """The direct conv of the plan's template (DIRECT, DIRECT_BLOCKED or DIRECT_STORED), then the epilogue."""
    kernel = p.kernel()
    pairs = p.plan.dot is Dot.BF16_PAIRS
    x = _padded_bits(p) if pairs else p.padded()
    w = _weights(kernel, p)
    source = p.plan.source
    ib = _in_block(p) if p.plan.template is Template.DIRECT_STORED else 1
    rco = None if _depthwise_shaped(p) else te.reduce_axis((0, p.group_in // ib), name="rco")
    rk = [te.reduce_axis((0, k), name=f"rk{i}") for i, k in enumerate(p.taps)]
    if pairs:  # the block reduced pair by pair, the pair innermost (cpu_bf16_dot.py)
        block_axes = [te.reduce_axis((0, ib // 2), name="rcp"), te.reduce_axis((0, 2), name=PAIR_AXIS)]
        rci = block_axes[0] * 2 + block_axes[1]
    else:
        block_axes = [te.reduce_axis((0, ib), name="rci")] if ib > 1 else []
        rci = block_axes[0] if block_axes else None
    axes = [*([rco] if rco is not None else []), *rk, *block_axes]
    multiplier = p.group_out

    def compute(*index):
        out = _decode(p, index)
        position = p.window_positions(out.pixel, rk)
        if rco is None:
            channel, blocked = (out.logical // multiplier if multiplier > 1 else out.logical), None
        elif rci is not None:
            channel, blocked = None, (out.group * (p.group_in // ib) + rco, rci)
        else:
            channel, blocked = p.input_channel(out.group, rco), None
        if blocked is not None:
            value = x[(out.n, blocked[0], *position, blocked[1])]
        elif p.plan.weights is WeightForm.DEPTHWISE_NCHWC and source == p.plan.layout:
            value = x[(out.n, out.channel[0], *position, out.channel[1])]
        else:
            value = x[physical_index(source, (out.n, channel, *position))]
        weight = _read_weight(p, w, out, 0 if rco is None else rco, 0 if rci is None else rci, rk, block_axes)
        if pairs:
            return te.sum(bf16_bits_value(_bits(value)) * bf16_bits_value(weight), axis=axes)
        return te.sum(p.product(value, weight), axis=axes)

    stage = te.compute(_stage_shape(p), compute, name=CONV_STAGE)
    kernel.outputs.append(_finish(p, stage))
    return kernel


def _padded_bits(p: ConvProblem) -> te.Tensor:
    """X's bfloat16 values as their uint16 bits, zero-padded: the pairs' operand. TVM's BF16 legalization
    widens a bfloat16 intermediate (the padded input) to float32, whose pairs are no longer 32 bits; bits
    it leaves alone. Unpadded, X itself (a parameter, which stays bfloat16), read as bits in the product."""
    if not any(p.window.pads_begin) and not any(p.window.pads_end):
        return p.x
    bits = te.compute(shape_of(p.x), lambda *i: tirx.reinterpret("uint16", p.x[i]), name="x_bits")
    return pad_spatial(bits, p.plan.source, p.window.pads_begin, p.window.pads_end, const(0, "uint16"))


def _bits(value: tirx.Expr) -> tirx.Expr:
    """A pair operand's uint16 bits: the padded copy's as they are, the bfloat16 input's reinterpreted."""
    return value if dtype_of(value) == "uint16" else tirx.reinterpret("uint16", value)


def _depthwise_shaped(p: ConvProblem) -> bool:
    """No channel reduction: one input channel per group, and in a stored layout one output channel too
    (plan.py gives a stored conv with a channel multiplier the reduction's form)."""
    return p.group_in == 1 and (p.plan.layout is None or p.group_out == 1)


def _finish(p: ConvProblem, stage: te.Tensor) -> te.Tensor:
    """The epilogue in Y's layout and shape; the stage itself when nothing is added and it has Y's shape."""
    layout = p.plan.layout
    if layout is None:
        return p.epilogue.apply(stage)
    if p.epilogue.empty and not p.plan.flat:
        return stage
    axis = 2 if layout.kind is LayoutKind.NCHWC else 1
    cols = p.out_shape[3]

    def read(*index):
        if not p.plan.flat:
            return stage[index]
        return stage[(*index[:axis], index[axis] * cols + index[axis + 1], *index[axis + 2:])]

    return p.epilogue.finish_stored(read, physical_shape(p.call.out_types[0]), layout)
