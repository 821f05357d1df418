"""Convolutions: Conv (1-D/2-D/3-D, grouped, dilated, padded) and ConvTranspose."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops.registry import declare
from cnncompile.ops.spatial import AutoPad, resolve_window, windows


@dataclass(frozen=True)
class ConvAttrs:
    auto_pad: AutoPad = AutoPad.NOTSET
    dilations: tuple[int, ...] | None = None
    group: int = 1
    kernel_shape: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None


def _conv_window(x: tuple[int, ...], w: tuple[int, ...], attrs: dict):
    return resolve_window("Conv", x[2:], tuple(w[2:]), attrs["strides"], attrs["dilations"],
                          attrs["pads"], attrs["auto_pad"])


def _conv_shape(x: TensorType, w: TensorType, b: TensorType | None = None, **attrs) -> TensorType:
    group = attrs["group"]
    if x.rank < 3 or w.rank != x.rank:
        raise ShapeError(f"Conv needs X of rank >= 3 and W of the same rank, got X{list(x.shape)} W{list(w.shape)}")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise ShapeError(f"Conv operands must share one dtype, got X {x.dtype.value}, W {w.dtype.value}")
    if group < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise ShapeError(
            f"Conv with group={group}: X has {x.shape[1]} channels and W is {list(w.shape)}; "
            f"need X channels = W.shape[1] * group and W.shape[0] divisible by group"
        )
    if attrs["kernel_shape"] is not None and tuple(attrs["kernel_shape"]) != tuple(w.shape[2:]):
        raise ShapeError(f"Conv kernel_shape {list(attrs['kernel_shape'])} disagrees with W{list(w.shape)}")
    if b is not None and b.shape != (w.shape[0],):
        raise ShapeError(f"Conv bias must have shape [{w.shape[0]}], got {list(b.shape)}")
    window = _conv_window(x.shape, w.shape, attrs)
    return TensorType((x.shape[0], w.shape[0], *window.out), x.dtype, x.layout)


def _conv_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: ConvAttrs) -> int:
    """2 x multiply-adds: each output element is a dot product of length (C/group) * prod(kernel)."""
    w = inputs[1]
    return 2 * outputs[0].numel * math.prod(w.shape[1:])


@declare("Conv", ConvAttrs, inputs=("X", "W", "B?"), shape=_conv_shape, flops=_conv_flops)
def Conv(x, w, b=None, **attrs):
    """Cross-correlation of X (N, C, *spatial) with W (M, C/group, *kernel), plus bias.

    im2col by sliding windows, then one batched matmul over the groups:
    (G, N*out, C/G*K) @ (G, C/G*K, M/G).
    """
    window = _conv_window(x.shape, w.shape, attrs)
    n, c = x.shape[:2]
    m, g = w.shape[0], attrs["group"]
    rank = len(window.kernel)
    patches = windows(x, window).reshape(n, g, c // g, *window.out, *window.kernel)
    spatial_axes = tuple(range(3, 3 + rank))
    kernel_axes = tuple(range(3 + rank, 3 + 2 * rank))
    cols = patches.transpose(1, 0, *spatial_axes, 2, *kernel_axes).reshape(g, n * math.prod(window.out), -1)
    weights = w.reshape(g, m // g, -1).transpose(0, 2, 1)
    y = np.matmul(cols, weights).reshape(g, n, *window.out, m // g)
    y = y.transpose(1, 0, 2 + rank, *range(2, 2 + rank)).reshape(n, m, *window.out)
    if b is not None:
        y = y + b.reshape(1, m, *(1,) * rank)
    return np.ascontiguousarray(y)
