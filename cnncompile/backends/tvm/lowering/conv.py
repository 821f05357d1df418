"""Convolutions: Conv, FusedConv (conv + bias + residual + activation in one kernel), ConvTranspose.

Every convolution is lowered to the same shape of TE, which the CONV schedules rely on:

    [producer stages: padding, dilation]  ->  `conv` (one reduction)  ->  [`epilogue`]

`conv` iterates (n, o, *spatial) spatially and (rc, *rk) as its reduction: rc over the
input channels of the output channel's group, rk over the kernel window. The epilogue
(bias, residual, activation) is one element-wise stage the schedules compute while the
accumulator tile is still in registers, so a FusedConv never writes its raw conv result.

On a CPU, a conv whose weights are constants and whose groups' output channels fill SIMD
vectors is lowered *blocked*: its weights are repacked at build time to
(O/B, C/G, *k, B), so the B output channels of one block are a contiguous vector per
weight tap, and the schedule vectorizes over them (tiling.py picks B and the tile).
Depthwise convs and weights that arrive at run time keep the plain NCHW layout.

ConvTranspose is the same conv run over its input with zeros inserted between pixels (the
stride) and the kernel flipped: y[u] = sum_k x[(u + pb - k*d) / s] W[k] over the k where
that division is exact, which is the direct conv of the dilated, re-padded input with
W[K-1-k].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from tvm import te, tirx

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.backends.tvm.kernel import CONV_STAGE, Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering import conv_layouts
from cnncompile.backends.tvm.lowering.common import const, zero_padded
from cnncompile.backends.tvm.lowering.conv_algorithms import (
    ConvProblem, checked_tile, lower_algorithm, lower_stored_winograd,
)
from cnncompile.backends.tvm.lowering.epilogue import Epilogue
from cnncompile.backends.tvm.tiling import ConvTile, conv_tile
from cnncompile.errors import AttrError
from cnncompile.ir.types import storage
from cnncompile.ops.conv import Conv, ConvTranspose, _transpose_window
from cnncompile.ops.fused import Activation, FusedConv
from cnncompile.ops.registry import OpDef, attr_dict
from cnncompile.ops.spatial import resolve_window

# Reads one weight element for (output channel, input channel within the group, kernel offsets).
WeightRead = Callable[[tirx.Expr, tirx.Expr, Sequence[tirx.Expr]], tirx.Expr]


def direct_conv(source: te.Tensor, weight: WeightRead, out_shape: Sequence[int], group_in: int, group_out: int,
                kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]) -> te.Tensor:
    """conv[n, o, *p] = sum_{rc, rk} source[n, g(o)*group_in + rc, p*s + rk*d] * weight(o, rc, rk)."""
    rc = te.reduce_axis((0, group_in), name="rc")
    rk = [te.reduce_axis((0, k), name=f"rk{i}") for i, k in enumerate(kernel)]
    grouped = group_out != out_shape[1]

    def compute(n, o, *p):
        channel = (o // group_out) * group_in + rc if grouped else rc
        position = [pi * s + ki * d for pi, ki, s, d in zip(p, rk, strides, dilations)]
        product = source[(n, channel, *position)] * weight(o, rc, rk)
        return te.sum(product, axis=[rc, *rk])

    return te.compute(tuple(out_shape), compute, name=CONV_STAGE)


def _with_epilogue(conv: te.Tensor, bias: te.Tensor | None, residual: te.Tensor | None, kind: Activation,
                   activation_attrs: object) -> te.Tensor:
    """activation(conv + bias[o] + residual) as one stage; the conv itself when there is nothing to add."""
    return Epilogue(bias, residual, kind, activation_attrs).apply(conv)


def _forward(call: Call, kind: Activation = Activation.NONE, activation_attrs: object = None) -> Kernel:
    x, w, *rest = call.inputs
    bias = rest[0] if rest else None
    residual = rest[1] if len(rest) > 1 else None
    attrs = call.attrs
    algorithm = getattr(attrs, "algorithm", ConvAlgorithm.DIRECT)
    if storage(call.out_types[0]) is not None:
        if algorithm.winograd_tile:
            return lower_stored_winograd(call, Epilogue(bias, residual, kind, activation_attrs), algorithm)
        return conv_layouts.lower(call, kind, activation_attrs)
    window = resolve_window("Conv", shape_of(x)[2:], shape_of(w)[2:], attrs.strides, attrs.dilations,
                            attrs.pads, attrs.auto_pad)
    if algorithm is not ConvAlgorithm.DIRECT:
        epilogue = Epilogue(bias, residual, kind, activation_attrs)
        return lower_algorithm(algorithm, ConvProblem(call, x, w, window, epilogue))
    padded = zero_padded(x, window.pads_begin, window.pads_end, const(0, x.dtype))
    out_shape = call.out_types[0].shape
    group_in = shape_of(w)[1]
    group_out = out_shape[1] // attrs.group
    tile = _blocked_tile(call, group_in, group_out)
    if tile is None:
        kernel = Kernel([], KernelKind.CONV)
        conv = direct_conv(padded, partial(_read_weight, w), out_shape, group_in, group_out, window.kernel,
                           window.strides, window.dilations)
    else:
        kernel = Kernel([], KernelKind.CONV_BLOCKED, tile=tile)
        conv = _blocked_conv(kernel, call, padded, w, tile.vectors * call.lanes, window)
    kernel.outputs.append(_with_epilogue(conv, bias, residual, kind, activation_attrs))
    return kernel


def _read_weight(w: te.Tensor, o: tirx.Expr, rc: tirx.Expr, rk: Sequence[tirx.Expr]) -> tirx.Expr:
    return w[(o, rc, *rk)]


def _blocked_tile(call: Call, group_in: int, group_out: int) -> ConvTile | None:
    """The CPU register tile when the weights are constant and each group's output channels fill vectors:
    attrs.tile when tuning chose one (checked against the conv), else conv_tile's.

    Depthwise convs (one input channel per group) are left to the plain schedule: their
    output channels read different input channels, so a channel vector would need a gather.
    """
    spatial = call.out_types[0].shape[2:]
    rows = spatial[-2] if len(spatial) > 1 else 1
    blocked = call.lanes is not None and call.constant[1] and group_in > 1
    if getattr(call.attrs, "tile", ()):
        if not blocked:
            raise AttrError(f"tile {list(call.attrs.tile)}: this conv has no register-tiled kernel (it is blocked "
                            "only on a CPU, with constant weights and more than one input channel per group)")
        return checked_tile(call, group_out, rows, spatial[-1])
    return conv_tile(group_out, rows, spatial[-1], call.lanes) if blocked else None


def pack_output_blocks(weights: np.ndarray, block: int) -> np.ndarray:
    """(O, C, *k) -> (O/block, C, *k, block): one block of output channels contiguous per weight tap."""
    o, *rest = weights.shape
    blocked = weights.reshape(o // block, block, *rest)
    return np.ascontiguousarray(np.moveaxis(blocked, 1, -1))


def _blocked_conv(kernel: Kernel, call: Call, padded: te.Tensor, w: te.Tensor, block: int, window) -> te.Tensor:
    """The conv over weights packed as (O/block, C/G, *k, block), so one output-channel block is a vector.

    The input channel is computed from the block index, not the channel, so that it is
    visibly the same for every lane of a vector.
    """
    o_total, group_in, *taps = shape_of(w)
    packed = kernel.repack(1, (o_total // block, group_in, *taps, block), str(w.dtype),
                           partial(pack_output_blocks, block=block), "w_packed")
    group_out = o_total // call.attrs.group
    grouped = call.attrs.group > 1
    rc = te.reduce_axis((0, group_in), name="rc")
    rk = [te.reduce_axis((0, k), name=f"rk{i}") for i, k in enumerate(taps)]

    def compute(n, o, *p):
        channel = ((o // block) // (group_out // block)) * group_in + rc if grouped else rc
        position = [pi * s + ki * d for pi, ki, s, d in zip(p, rk, window.strides, window.dilations)]
        product = padded[(n, channel, *position)] * packed[(o // block, rc, *rk, o % block)]
        return te.sum(product, axis=[rc, *rk])

    return te.compute(call.out_types[0].shape, compute, name=CONV_STAGE)


def _fused(call: Call) -> Kernel:
    return _forward(call, call.attrs.activation, call.attrs.activation_attrs)


def _transposed(call: Call) -> Kernel:
    x, w, *rest = call.inputs
    bias = rest[0] if rest else None
    window = _transpose_window(shape_of(x), shape_of(w), attr_dict(call.attrs))
    out_shape = call.out_types[0].shape
    spatial = shape_of(x)[2:]
    # the dilated input, re-padded so that output u reads positions u .. u + extent - 1
    offsets = [(k - 1) * d - b for k, d, b in zip(window.kernel, window.dilations, window.pads_begin)]
    lengths = [o + (k - 1) * d for o, k, d in zip(window.out, window.kernel, window.dilations)]

    def dilate(n, c, *q):
        shifted = [qi - off for qi, off in zip(q, offsets)]
        hit = tirx.all(*(tirx.all(t >= 0, tirx.floormod(t, s) == 0, tirx.floordiv(t, s) < size)
                         for t, s, size in zip(shifted, window.strides, spatial)))
        source = x[(n, c, *(tirx.floordiv(t, s) for t, s in zip(shifted, window.strides)))]
        return tirx.if_then_else(hit, source, const(0, x.dtype))

    dilated = te.compute((*shape_of(x)[:2], *lengths), dilate, name="dilate")
    group_in = shape_of(x)[1] // call.attrs.group
    group_out = shape_of(w)[1]

    def weight(o, rc, rk):
        channel = (o // group_out) * group_in + rc
        return w[(channel, o % group_out, *(k - 1 - r for k, r in zip(window.kernel, rk)))]

    conv = direct_conv(dilated, weight, out_shape, group_in, group_out, window.kernel,
                       (1,) * len(spatial), window.dilations)
    return Kernel([_with_epilogue(conv, bias, None, Activation.NONE, None)], KernelKind.CONV)


LOWERINGS: dict[OpDef, Lowering] = {
    Conv: Lowering(_forward),
    FusedConv: Lowering(_fused),
    ConvTranspose: Lowering(_transposed),
}
