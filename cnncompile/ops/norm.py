"""Normalization: BatchNormalization (inference), LayerNormalization, InstanceNormalization, LRN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.registry import CostRule, declare, normalize_axis


def _per_x_element(flops: int) -> CostRule:
    """Cost of a normalization doing a fixed amount of arithmetic per element of X."""

    def rule(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
        return flops * inputs[0].numel

    return rule


def _check_float(op: str, *types: TensorType) -> None:
    bad = [t for t in types if not t.dtype.is_float]
    if bad:
        raise ShapeError(f"{op} takes floating-point tensors, got " + ", ".join(str(t) for t in bad))


def _check_per_channel(op: str, x: TensorType, names: Sequence[str], stats: Sequence[TensorType],
                       want: tuple[int, ...]) -> None:
    for name, t in zip(names, stats):
        if t.shape != want:
            raise ShapeError(f"{op}: {name} must have shape {list(want)} for X{list(x.shape)}, "
                             f"got {list(t.shape)}; pass one value per channel")


@dataclass(frozen=True)
class BatchNormalizationAttrs:
    """`spatial` is the pre-opset-9 switch: 0 gives every (channel, position) its own statistics."""

    epsilon: float = 1e-5
    momentum: float = 0.9
    spatial: int = 1
    training_mode: int = 0


BN_INPUTS = ("X", "scale", "B", "input_mean", "input_var")


def _batch_norm_shape(x: TensorType, *stats: TensorType, **attrs) -> TensorType:
    if attrs["training_mode"]:
        raise UnsupportedError("BatchNormalization with training_mode=1 computes batch statistics and "
                               "updates running ones; cnncompile compiles inference only: export the "
                               "model in eval mode (training_mode=0)")
    if x.rank < 2:
        raise ShapeError(f"BatchNormalization needs X of rank >= 2 (N, C, ...), got X{list(x.shape)}")
    _check_float("BatchNormalization", x, *stats)
    want = (x.shape[1],) if attrs["spatial"] else x.shape[1:]
    _check_per_channel("BatchNormalization", x, BN_INPUTS[1:], stats, want)
    return x


@declare("BatchNormalization", BatchNormalizationAttrs, inputs=BN_INPUTS,
         shape=_batch_norm_shape, flops=_per_x_element(2))
def BatchNormalization(x, scale, b, mean, var, *, epsilon, **_):
    """Inference batch norm: (X - mean) / sqrt(var + epsilon) * scale + B, with per-channel statistics.

    Folded into one per-channel multiplier and offset, the form every backend runs:
    Y = X * a + (B - mean * a) with a = scale / sqrt(var + epsilon).
    """
    a = scale / np.sqrt(var + epsilon)
    shift = b - mean * a
    trailing = (1,) * (x.ndim - 1 - a.ndim)
    return (x * a.reshape(*a.shape, *trailing) + shift.reshape(*shift.shape, *trailing)).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class LayerNormalizationAttrs:
    axis: int = -1
    epsilon: float = 1e-5
    stash_type: DType = DType.FLOAT32


def _layer_norm_shape(x: TensorType, scale: TensorType, b: TensorType | None = None, **attrs):
    axis = normalize_axis(attrs["axis"], x.rank, "LayerNormalization")
    _check_float("LayerNormalization", x, scale, *([b] if b is not None else []))
    if not attrs["stash_type"].is_float:
        raise ShapeError(f"LayerNormalization: stash_type must be a floating type, got {attrs['stash_type'].value}")
    normalized = x.shape[axis:]
    for name, t in (("Scale", scale), ("B", b)):
        if t is not None and (t.rank > len(normalized) or any(
                d not in (1, n) for d, n in zip(reversed(t.shape), reversed(normalized)))):
            raise ShapeError(f"LayerNormalization: {name}{list(t.shape)} does not broadcast to the normalized "
                             f"dims {list(normalized)} of X{list(x.shape)} (axis={attrs['axis']})")
    stats = TensorType((*x.shape[:axis], *(1,) * (x.rank - axis)), attrs["stash_type"])
    return [x, stats, stats]


@declare("LayerNormalization", LayerNormalizationAttrs, inputs=("X", "Scale", "B?"),
         outputs=("Y", "Mean", "InvStdDev"), shape=_layer_norm_shape, flops=_per_x_element(7))
def LayerNormalization(x, scale, b=None, *, axis, epsilon, **_):
    """Normalize X to zero mean and unit variance over the dims from `axis` on, then * Scale + B.

    Also returns the Mean and InvStdDev it used, shaped like X with the normalized dims
    kept as 1; the reference computes them in its own precision whatever stash_type says.
    """
    axes = tuple(range(normalize_axis(axis, x.ndim, "LayerNormalization"), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    inv_std = 1.0 / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + epsilon)
    y = centred * inv_std * scale
    if b is not None:
        y = y + b
    return y.astype(x.dtype, copy=False), mean, inv_std.astype(x.dtype, copy=False)


@dataclass(frozen=True)
class InstanceNormalizationAttrs:
    epsilon: float = 1e-5


def _instance_norm_shape(x: TensorType, scale: TensorType, b: TensorType, **attrs) -> TensorType:
    if x.rank < 3:
        raise ShapeError(f"InstanceNormalization needs input of rank >= 3 (N, C, *spatial), got {list(x.shape)}")
    _check_float("InstanceNormalization", x, scale, b)
    _check_per_channel("InstanceNormalization", x, ("scale", "B"), (scale, b), (x.shape[1],))
    return x


@declare("InstanceNormalization", InstanceNormalizationAttrs, inputs=("input", "scale", "B"),
         shape=_instance_norm_shape, flops=_per_x_element(7))
def InstanceNormalization(x, scale, b, *, epsilon):
    """Normalize each (sample, channel) plane to zero mean and unit variance, then * scale + B per channel."""
    axes = tuple(range(2, x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    normalized = centred / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + epsilon)
    per_channel = (1, -1, *(1,) * (x.ndim - 2))
    return (normalized * scale.reshape(per_channel) + b.reshape(per_channel)).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class LRNAttrs:
    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0


def _lrn_shape(x: TensorType, **attrs) -> TensorType:
    if x.rank < 3:
        raise ShapeError(f"LRN needs X of rank >= 3 (N, C, *spatial), got X{list(x.shape)}")
    _check_float("LRN", x)
    if attrs["size"] < 1:
        raise ShapeError(f"LRN: size must be positive, got {attrs['size']}")
    return x


def _lrn_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: LRNAttrs) -> int:
    """Square, a size-wide channel sum, scale and bias, power, divide."""
    return (attrs.size + 4) * inputs[0].numel


@declare("LRN", LRNAttrs, shape=_lrn_shape, flops=_lrn_flops)
def LRN(x, *, size, alpha, beta, bias):
    """Local response normalization across channels: X / (bias + alpha / size * sum of X^2 over nearby channels)^beta.

    Channel c sums the squares of channels c - floor((size - 1) / 2) .. c + ceil((size - 1) / 2)
    that exist: zero-pad the squares along C and slide a size-wide window over them.
    """
    below, above = (size - 1) // 2, size - 1 - (size - 1) // 2
    squares = np.pad(x * x, [(0, 0), (below, above)] + [(0, 0)] * (x.ndim - 2))
    square_sum = np.lib.stride_tricks.sliding_window_view(squares, size, axis=1).sum(axis=-1)
    return (x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype, copy=False)
