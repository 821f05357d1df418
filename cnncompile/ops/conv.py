"""Convolutions: Conv (1-D/2-D/3-D, grouped, dilated, padded) and ConvTranspose."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.algorithms.reference import gemm_1x1, im2col_gemm
from cnncompile.algorithms.windows import AutoPad, Window, resolve_window
from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops.registry import declare


@dataclass(frozen=True)
class ConvAttrs:
    auto_pad: AutoPad = AutoPad.NOTSET
    dilations: tuple[int, ...] | None = None
    group: int = 1
    kernel_shape: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None


def conv_window(x: tuple[int, ...], w: tuple[int, ...], attrs: dict, op: str = "Conv") -> Window:
    """The window of a conv (ConvAttrs as a dict) over input shape `x` with weights `w`, errors naming `op`."""
    return resolve_window(op, x[2:], tuple(w[2:]), attrs["strides"], attrs["dilations"], attrs["pads"],
                          attrs["auto_pad"])


def _conv_shape(x: TensorType, w: TensorType, b: TensorType | None = None, **attrs) -> TensorType:
    group = attrs["group"]
    if x.rank < 3 or w.rank != x.rank:
        raise ShapeError(f"Conv needs X of rank >= 3 and W of the same rank, got X{list(x.shape)} W{list(w.shape)}")
    if x.dtype != w.dtype or (b is not None and not x.dtype.takes_parameter(b.dtype)):
        raise ShapeError(f"Conv operands must share one dtype (a bias may be in the accumulator's), got X "
                         f"{x.dtype.value}, W {w.dtype.value}" + (f", B {b.dtype.value}" if b is not None else ""))
    if group < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise ShapeError(
            f"Conv with group={group}: X has {x.shape[1]} channels and W is {list(w.shape)}; "
            f"need X channels = W.shape[1] * group and W.shape[0] divisible by group"
        )
    if attrs["kernel_shape"] is not None and tuple(attrs["kernel_shape"]) != tuple(w.shape[2:]):
        raise ShapeError(f"Conv kernel_shape {list(attrs['kernel_shape'])} disagrees with W{list(w.shape)}")
    if b is not None and b.shape != (w.shape[0],):
        raise ShapeError(f"Conv bias must have shape [{w.shape[0]}], got {list(b.shape)}")
    window = conv_window(x.shape, w.shape, attrs)
    return TensorType((x.shape[0], w.shape[0], *window.out), x.dtype, x.layout)


def _conv_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: ConvAttrs) -> int:
    """2 x multiply-adds: each output element is a dot product of length (C/group) * prod(kernel)."""
    w = inputs[1]
    return 2 * outputs[0].numel * math.prod(w.shape[1:])


@declare("Conv", ConvAttrs, inputs=("X", "W", "B?"), shape=_conv_shape, flops=_conv_flops)
def Conv(x, w, b=None, **attrs):
    """Cross-correlation of X (N, C, *spatial) with W (M, C/group, *kernel), plus bias.

    By im2col and one broadcast matmul, or, for a pointwise conv (1x1, stride 1, no
    padding), by the matmul alone: see cnncompile.algorithms.reference.
    """
    window = conv_window(x.shape, w.shape, attrs)
    pointwise = all(k == 1 for k in window.kernel) and all(s == 1 for s in window.strides) \
        and not any(window.pads_begin + window.pads_end)
    y = (gemm_1x1 if pointwise else im2col_gemm)(x, w, window, attrs["group"])
    if b is not None:
        y += b.reshape(-1, *(1,) * len(window.kernel))
    return y


@dataclass(frozen=True)
class ConvTransposeAttrs:
    auto_pad: AutoPad = AutoPad.NOTSET
    dilations: tuple[int, ...] | None = None
    group: int = 1
    kernel_shape: tuple[int, ...] | None = None
    output_padding: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None


def _transpose_window(x: tuple[int, ...], w: tuple[int, ...], attrs: dict) -> Window:
    """The window of the Conv that ConvTranspose is the adjoint of, `out` being Y's spatial size.

    Scattering X through the kernel fills `full = (in - 1) * s + (k - 1) * d + 1` positions;
    Y is that strip cropped by pads at both ends and grown by output_padding at the end:
        out = full + output_padding - pads_begin - pads_end
    An explicit output_shape (or auto_pad SAME, which asks for out = in * s) fixes `out`
    instead, and the total padding this implies is split as ONNX says: the odd unit goes
    to the end for SAME_UPPER and to the beginning otherwise. Where the target lies beyond
    full + output_padding the padding is zero, as in onnxruntime: an explicit output_shape
    then gets zeros at the end (up to s - 1 of them, the most a Conv back would ignore),
    while SAME stops at full + output_padding rather than reaching in * s.
    """
    spatial, kernel = x[2:], tuple(w[2:])
    rank = len(spatial)
    strides = attrs["strides"] or (1,) * rank
    dilations = attrs["dilations"] or (1,) * rank
    pads = attrs["pads"] or (0,) * (2 * rank)
    adjust = attrs["output_padding"] or (0,) * rank
    auto_pad, output_shape = attrs["auto_pad"], attrs["output_shape"]
    for label, values, want in (("strides", strides, rank), ("dilations", dilations, rank), ("pads", pads, 2 * rank),
                                ("output_padding", adjust, rank), ("output_shape", output_shape or spatial, rank)):
        if len(values) != want:
            raise ShapeError(f"ConvTranspose: {label} has {len(values)} entries, expected {want} for {rank}-D input")
    if any(v < 1 for v in (*kernel, *strides, *dilations)) or any(p < 0 for p in (*pads, *adjust)):
        raise ShapeError(f"ConvTranspose: kernel {list(kernel)}, strides {list(strides)} and dilations "
                         f"{list(dilations)} must be positive, pads {list(pads)} and output_padding "
                         f"{list(adjust)} non-negative")
    if any(a >= s for a, s in zip(adjust, strides)):
        raise ShapeError(f"ConvTranspose: output_padding {list(adjust)} must be smaller than strides {list(strides)}")
    full = [(n - 1) * s + (k - 1) * d + 1 for n, s, k, d in zip(spatial, strides, kernel, dilations)]
    same = auto_pad in (AutoPad.SAME_UPPER, AutoPad.SAME_LOWER)
    if output_shape is not None or same:
        target = output_shape or [n * s for n, s in zip(spatial, strides)]
        if output_shape is not None and any(t > f + s - 1 for t, f, s in zip(target, full, strides)):
            raise ShapeError(f"ConvTranspose: output_shape {list(output_shape)} is too large for input "
                             f"{list(spatial)}: at most {[f + s - 1 for f, s in zip(full, strides)]} fits")
        totals = [max(f + a - t, 0) for f, a, t in zip(full, adjust, target)]
        begin = [t // 2 if auto_pad is AutoPad.SAME_UPPER else t - t // 2 for t in totals]
        end = [t - b for t, b in zip(totals, begin)]
        out = tuple(output_shape or (f + a - t for f, a, t in zip(full, adjust, totals)))
    else:
        begin, end = ([0] * rank, [0] * rank) if auto_pad is AutoPad.VALID else (list(pads[:rank]), list(pads[rank:]))
        out = tuple(f + a - b - e for f, a, b, e in zip(full, adjust, begin, end))
    if any(o < 1 for o in out):
        raise ShapeError(f"ConvTranspose: output size {list(out)} is not positive for input {list(spatial)}, "
                         f"kernel {list(kernel)} and pads {begin + end}; reduce the pads")
    return Window(kernel, tuple(strides), tuple(dilations), tuple(begin), tuple(end), out)


def _conv_transpose_shape(x: TensorType, w: TensorType, b: TensorType | None = None, **attrs) -> TensorType:
    group = attrs["group"]
    if x.rank < 3 or w.rank != x.rank:
        raise ShapeError(f"ConvTranspose needs X of rank >= 3 and W of the same rank, "
                         f"got X{list(x.shape)} W{list(w.shape)}")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise ShapeError(f"ConvTranspose operands must share one dtype, got X {x.dtype.value}, W {w.dtype.value}")
    if group < 1 or x.shape[1] != w.shape[0] or x.shape[1] % group:
        raise ShapeError(
            f"ConvTranspose with group={group}: X has {x.shape[1]} channels and W is {list(w.shape)}; "
            f"need W.shape[0] = X channels, divisible by group"
        )
    if attrs["kernel_shape"] is not None and tuple(attrs["kernel_shape"]) != tuple(w.shape[2:]):
        raise ShapeError(f"ConvTranspose kernel_shape {list(attrs['kernel_shape'])} disagrees with W{list(w.shape)}")
    m = w.shape[1] * group
    if b is not None and b.shape != (m,):
        raise ShapeError(f"ConvTranspose bias must have shape [{m}] (W.shape[1] * group), got {list(b.shape)}")
    window = _transpose_window(x.shape, w.shape, attrs)
    return TensorType((x.shape[0], m, *window.out), x.dtype, x.layout)


def _conv_transpose_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    """2 x multiply-adds: each input element meets (M/group) * prod(kernel) weights."""
    x, w = inputs[:2]
    return 2 * x.numel * math.prod(w.shape[1:])


@declare("ConvTranspose", ConvTransposeAttrs, inputs=("X", "W", "B?"),
         shape=_conv_transpose_shape, flops=_conv_transpose_flops)
def ConvTranspose(x, w, b=None, **attrs):
    """Transposed convolution (Conv's adjoint): each X pixel scatters its W-weighted kernel into Y, plus bias.

    One batched matmul (G, N*in, C/G) @ (G, C/G, M/G*K) gives every pixel's contribution
    at every kernel offset; col2im then adds each offset's contributions into a strided
    slice of the uncropped output (one slice-add per kernel offset), which is then cropped
    by the pads.
    """
    window = _transpose_window(x.shape, w.shape, attrs)
    n, c, *spatial = x.shape
    g = attrs["group"]
    mg = w.shape[1]
    rank = len(spatial)
    rows = x.reshape(n, g, c // g, -1).transpose(1, 0, 3, 2).reshape(g, -1, c // g)
    cols = np.matmul(rows, w.reshape(g, c // g, -1)).reshape(g, n, *spatial, mg, -1)
    cols = cols.transpose(1, 0, 2 + rank, 3 + rank, *range(2, 2 + rank)).reshape(n, g * mg, -1, *spatial)
    size = [max((i - 1) * s + e, begin + o) for i, s, e, begin, o in
            zip(spatial, window.strides, window.extent, window.pads_begin, window.out)]
    y = np.zeros((n, g * mg, *size), x.dtype)
    for k, offset in enumerate(np.ndindex(*window.kernel)):
        index = tuple(slice(o * d, o * d + (i - 1) * s + 1, s)
                      for o, d, i, s in zip(offset, window.dilations, spatial, window.strides))
        y[(slice(None), slice(None), *index)] += cols[:, :, k]
    crop = tuple(slice(begin, begin + o) for begin, o in zip(window.pads_begin, window.out))
    y = y[(slice(None), slice(None), *crop)]
    if b is not None:
        y = y + b.reshape(1, -1, *(1,) * rank)
    return np.ascontiguousarray(y)
