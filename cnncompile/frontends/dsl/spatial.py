"""Sliding-window layers: convolution (1-D, 2-D, 3-D; grouped, depthwise, dilated) and pooling.

The number of spatial dimensions comes from the input, so one `Conv` serves a
spectrogram (N, C, T), an image (N, C, H, W) and a clip (N, C, D, H, W). Sizes are an
int (the same in every dimension) or a tuple per dimension; padding is symmetric, as
in the seeds' (W - K + 2P) / S + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnncompile.errors import ShapeError
from cnncompile.frontends.dsl.core import Builder, Init, Layer, join, require_feature_map, spatial
from cnncompile.ir.graph import Value
from cnncompile.ops import conv as conv_ops
from cnncompile.ops import pool as pool_ops

Size = int | tuple[int, ...]


def per_dim(value: Size, rank: int, what: str, path: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise ShapeError(f"layer '{path}': {what} {list(value)} has {len(value)} entries but the input has "
                         f"{rank} spatial dims")
    return tuple(value)


def _conv(b: Builder, x: Value, path: str, layer: str, out_channels: int, kernel: Size, stride: Size, pad: Size,
          dilation: Size, groups: int, bias: bool) -> Value:
    require_feature_map(path, layer, x)
    rank = x.type.rank - 2
    k, s, p, d = (per_dim(v, rank, what, path) for v, what in
                  ((kernel, "kernel"), (stride, "stride"), (pad, "pad"), (dilation, "dilation")))
    channels = x.type.shape[1]
    if channels % groups or out_channels % groups:
        raise ShapeError(f"layer '{path}' ({layer}): groups={groups} must divide both the input's {channels} "
                         f"channels and the {out_channels} output channels")
    b.check_window(path, layer, x, [(ki - 1) * di + 1 for ki, di in zip(k, d)], s, p)
    operands = [x, b.param(join(path, "weight"), (out_channels, channels // groups, *k), Init.HE_NORMAL)]
    if bias:
        operands.append(b.param(join(path, "bias"), (out_channels,), Init.SHIFT))
    return b.node(conv_ops.Conv, operands, path, strides=s, pads=p + p, dilations=d, group=groups)


@dataclass(frozen=True)
class Conv(Layer):
    """Cross-correlation with `out_channels` filters; `groups` > 1 splits the channels (ResNeXt, ShuffleNet)."""

    out_channels: int
    kernel: Size
    stride: Size = 1
    pad: Size = 0
    dilation: Size = 1
    groups: int = 1
    bias: bool = True

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        return _conv(b, x, path, "Conv", self.out_channels, self.kernel, self.stride, self.pad, self.dilation,
                     self.groups, self.bias)


@dataclass(frozen=True)
class DepthwiseConv(Layer):
    """One filter (or `multiplier` filters) per input channel: a Conv whose groups equal its channels."""

    kernel: Size
    stride: Size = 1
    pad: Size = 0
    dilation: Size = 1
    multiplier: int = 1
    bias: bool = True

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        require_feature_map(path, "DepthwiseConv", x)
        channels = x.type.shape[1]
        return _conv(b, x, path, "DepthwiseConv", channels * self.multiplier, self.kernel, self.stride, self.pad,
                     self.dilation, channels, self.bias)


def _window(b: Builder, x: Value, path: str, layer: str, kernel: Size, stride: Size | None, pad: Size,
            ceil: bool) -> dict:
    """Pooling attributes; the stride defaults to the kernel (non-overlapping windows).

    A ceil-mode pool asks for the overhanging last window on purpose, so the strict
    check applies only to floor-mode pools.
    """
    require_feature_map(path, layer, x)
    rank = len(spatial(x))
    k = per_dim(kernel, rank, "kernel", path)
    s = k if stride is None else per_dim(stride, rank, "stride", path)
    p = per_dim(pad, rank, "pad", path)
    if not ceil:
        b.check_window(path, layer, x, k, s, p)
    return {"kernel_shape": k, "strides": s, "pads": p + p, "ceil_mode": int(ceil)}


@dataclass(frozen=True)
class MaxPool(Layer):
    kernel: Size
    stride: Size | None = None
    pad: Size = 0
    ceil: bool = False

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        attrs = _window(b, x, path, "MaxPool", self.kernel, self.stride, self.pad, self.ceil)
        return b.node(pool_ops.MaxPool, [x], path, **attrs)


@dataclass(frozen=True)
class AvgPool(Layer):
    """Average pooling; `count_pad` decides whether padded positions count in the divisor."""

    kernel: Size
    stride: Size | None = None
    pad: Size = 0
    ceil: bool = False
    count_pad: bool = False

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        attrs = _window(b, x, path, "AvgPool", self.kernel, self.stride, self.pad, self.ceil)
        return b.node(pool_ops.AveragePool, [x], path, count_include_pad=int(self.count_pad), **attrs)


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over all spatial positions, whatever the input size: heads that work at any resolution."""

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        require_feature_map(path, "GlobalAvgPool", x)
        return b.node(pool_ops.GlobalAveragePool, [x], path)


@dataclass(frozen=True)
class GlobalMaxPool(Layer):
    """Maximum over all positions: the seeds' "did the pattern occur anywhere" (a Boolean OR)."""

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        require_feature_map(path, "GlobalMaxPool", x)
        return b.node(pool_ops.GlobalMaxPool, [x], path)
