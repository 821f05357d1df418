"""Pooling: MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from cnncompile.algorithms.windows import AutoPad, Window, reduce_windows, resolve_window
from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.registry import ANY_LAYOUT, OpLayouts, declare, per_input

# A window (or global) reduction per channel reads the same in any layout of a 2-D feature map.
LAYOUTS = OpLayouts(ANY_LAYOUT)
MAX_POOL_DTYPES = (DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32, DType.FLOAT64, DType.INT8, DType.UINT8)
FLOAT_DTYPES = (DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32, DType.FLOAT64)


@dataclass(frozen=True)
class MaxPoolAttrs:
    """`storage_order` only orders the optional Indices output, which cnncompile does not produce."""

    kernel_shape: tuple[int, ...]
    auto_pad: AutoPad = AutoPad.NOTSET
    ceil_mode: int = 0
    dilations: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    storage_order: int = 0
    strides: tuple[int, ...] | None = None


@dataclass(frozen=True)
class AveragePoolAttrs:
    kernel_shape: tuple[int, ...]
    auto_pad: AutoPad = AutoPad.NOTSET
    ceil_mode: int = 0
    count_include_pad: int = 0
    dilations: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None


def _pool_window(op: str, x: tuple[int, ...], attrs: dict) -> Window:
    if attrs["ceil_mode"] not in (0, 1):
        raise ShapeError(f"{op}: ceil_mode must be 0 or 1, got {attrs['ceil_mode']}")
    return resolve_window(op, x[2:], tuple(attrs["kernel_shape"]), attrs["strides"], attrs["dilations"],
                          attrs["pads"], attrs["auto_pad"], ceil_mode=bool(attrs["ceil_mode"]))


def _check_feature_map(op: str, x: TensorType, dtypes: tuple[DType, ...]) -> None:
    if x.rank < 3:
        raise ShapeError(f"{op} needs X of rank >= 3 (N, C, *spatial), got X{list(x.shape)}")
    if x.dtype not in dtypes:
        raise ShapeError(f"{op} does not take {x.dtype.value} input; cast X to one of "
                         + ", ".join(d.value for d in dtypes))


def _pool_shape(op: str, dtypes: tuple[DType, ...]):
    def rule(x: TensorType, **attrs) -> TensorType:
        _check_feature_map(op, x, dtypes)
        window = _pool_window(op, x.shape, attrs)
        return TensorType((*x.shape[:2], *window.out), x.dtype, x.layout)

    return rule


def _window_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    """One compare or add per window element per output."""
    return outputs[0].numel * math.prod(attrs.kernel_shape)


@declare("MaxPool", MaxPoolAttrs, shape=_pool_shape("MaxPool", MAX_POOL_DTYPES), flops=_window_flops,
         layouts=LAYOUTS)
def MaxPool(x, **attrs):
    """Maximum of X over each (dilated, strided) window; padding never wins."""
    window = _pool_window("MaxPool", x.shape, attrs)
    lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    return reduce_windows(x, window, np.maximum, fill=lowest)


@declare("AveragePool", AveragePoolAttrs, shape=_pool_shape("AveragePool", FLOAT_DTYPES), flops=_window_flops,
         layouts=LAYOUTS)
def AveragePool(x, **attrs):
    """Mean of X over each (dilated, strided) window; count_include_pad decides whether padding counts.

    With count_include_pad the divisor also counts the explicit (or auto_pad) padding, but
    never the extra end padding that ceil_mode adds so the last window fits: the divisor
    is the window's overlap with the padded input, found by pooling a mask of ones.
    """
    window = _pool_window("AveragePool", x.shape, attrs)
    sums = reduce_windows(x, window, np.add)
    if attrs["count_include_pad"]:
        padded = [n + b + e for n, b, e in zip(x.shape[2:], window.pads_begin, window.pads_end)]
        mask = np.ones((1, 1, *padded))
        mask_window = replace(window, pads_begin=(0,) * len(padded), pads_end=(0,) * len(padded))
    else:
        mask, mask_window = np.ones((1, 1, *x.shape[2:])), window
    counts = reduce_windows(mask, mask_window, np.add)
    # A dilated window can fall wholly in padding; its mean is 0, as in onnxruntime.
    return (sums / np.maximum(counts, 1)).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class LpPoolAttrs:
    kernel_shape: tuple[int, ...]
    auto_pad: AutoPad = AutoPad.NOTSET
    ceil_mode: int = 0
    dilations: tuple[int, ...] | None = None
    p: int = 2
    pads: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None


def _lp_pool_shape(x: TensorType, **attrs) -> TensorType:
    if attrs["p"] < 1:
        raise ShapeError(f"LpPool: p={attrs['p']}, but the p-norm needs p >= 1")
    return _pool_shape("LpPool", FLOAT_DTYPES)(x, **attrs)


@declare("LpPool", LpPoolAttrs, shape=_lp_pool_shape, flops=lambda i, o, attrs: 2 * _window_flops(i, o, attrs))
def LpPool(x, **attrs):
    """The p-norm of X over each (dilated, strided) window, (sum of |x|^p)^(1/p); padding adds nothing."""
    window = _pool_window("LpPool", x.shape, attrs)
    p = attrs["p"]
    return (reduce_windows(np.abs(x) ** p, window, np.add) ** (1.0 / p)).astype(x.dtype, copy=False)


def _global_shape(op: str):
    def rule(x: TensorType, **_) -> TensorType:
        _check_feature_map(op, x, FLOAT_DTYPES)
        return TensorType((*x.shape[:2], *(1,) * (x.rank - 2)), x.dtype, x.layout)

    return rule


@declare("GlobalAveragePool", shape=_global_shape("GlobalAveragePool"), flops=per_input(1), layouts=LAYOUTS)
def GlobalAveragePool(x):
    """Mean of X over all spatial dimensions, kept as size-1 dimensions."""
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype, copy=False)


@declare("GlobalMaxPool", shape=_global_shape("GlobalMaxPool"), flops=per_input(1), layouts=LAYOUTS)
def GlobalMaxPool(x):
    """Maximum of X over all spatial dimensions, kept as size-1 dimensions."""
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)
