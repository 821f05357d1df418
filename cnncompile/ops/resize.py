"""Resize: nearest and (multi-)linear interpolation over any set of axes.

Both modes are separable, so the N-D op is a sequence of 1-D resamplings, one per resized
axis, each vectorised over the whole tensor. For every output index x along an axis, the
coordinate transformation gives the source coordinate x_orig (ONNX's table, transcribed
in `source_coords`); nearest rounds it to an index, linear blends the two neighbours
floor(x_orig) and floor(x_orig) + 1 after clamping x_orig into the input.

Coordinates are computed in float32, as onnxruntime computes them: scales such as 0.6 are
not exact in binary, and whether nearest rounding sees x_orig = 2.0 or 1.9999999 depends
on the precision of that arithmetic (float32 lands on the value the exporter meant).

Output sizes with `scales` are floor(in * scale), as onnxruntime and onnx.reference compute
them; the spec's extra (roi_end - roi_start) factor for tf_crop_and_resize is not applied
by either, so it is not applied here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import TensorType
from cnncompile.ops.registry import attr_dict, declare
from cnncompile.ops.tensor import normalize_axes


class ResizeMode(enum.Enum):
    NEAREST = "nearest"
    LINEAR = "linear"
    CUBIC = "cubic"


class CoordinateTransformationMode(enum.Enum):
    HALF_PIXEL = "half_pixel"
    HALF_PIXEL_SYMMETRIC = "half_pixel_symmetric"
    PYTORCH_HALF_PIXEL = "pytorch_half_pixel"
    ALIGN_CORNERS = "align_corners"
    ASYMMETRIC = "asymmetric"
    TF_CROP_AND_RESIZE = "tf_crop_and_resize"


class NearestMode(enum.Enum):
    ROUND_PREFER_FLOOR = "round_prefer_floor"
    ROUND_PREFER_CEIL = "round_prefer_ceil"
    FLOOR = "floor"
    CEIL = "ceil"


class KeepAspectRatioPolicy(enum.Enum):
    STRETCH = "stretch"
    NOT_LARGER = "not_larger"
    NOT_SMALLER = "not_smaller"


@dataclass(frozen=True)
class ResizeAttrs:
    antialias: int = 0
    axes: tuple[int, ...] | None = None
    coordinate_transformation_mode: CoordinateTransformationMode = CoordinateTransformationMode.HALF_PIXEL
    cubic_coeff_a: float = -0.75
    exclude_outside: int = 0
    extrapolation_value: float = 0.0
    keep_aspect_ratio_policy: KeepAspectRatioPolicy = KeepAspectRatioPolicy.STRETCH
    mode: ResizeMode = ResizeMode.NEAREST
    nearest_mode: NearestMode = NearestMode.ROUND_PREFER_FLOOR
    roi: tuple[float, ...] | None = None
    scales: tuple[float, ...] | None = None
    sizes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class AxisPlan:
    """How one axis is resampled: lengths, the scale the coordinates use, the roi for tf_crop."""

    axis: int
    length_in: int
    length_out: int
    scale: np.float32
    roi_start: float
    roi_end: float


def plan(dims: tuple[int, ...], **attrs) -> list[AxisPlan]:
    """Resolve axes, scales or sizes and the aspect policy into one plan per resampled axis.

    Axes whose coordinates map onto themselves (scale 1, same length, no crop) are left out.
    """
    if attrs["mode"] is ResizeMode.CUBIC:
        raise UnsupportedError("Resize: attribute mode='cubic' is not supported; use mode 'linear' or 'nearest'")
    if attrs["antialias"]:
        raise UnsupportedError("Resize: attribute antialias=1 is not supported; export with antialias=0")
    rank = len(dims)
    axes = normalize_axes(attrs["axes"], rank, "Resize") if attrs["axes"] else list(range(rank))
    scales, sizes, roi = attrs["scales"] or None, attrs["sizes"] or None, attrs["roi"] or None
    if (scales is None) == (sizes is None):
        hint = " (an opset-10 Resize takes scales as input 1; re-export with opset >= 11)" if roi else ""
        raise ShapeError(f"Resize of {list(dims)} needs exactly one of scales and sizes{hint}")
    given = scales if scales is not None else sizes
    if len(given) != len(axes):
        raise ShapeError(f"Resize of {list(dims)}: {'scales' if scales else 'sizes'} {list(given)} needs one "
                         f"entry per resized axis ({len(axes)})")
    if any(v <= 0 for v in given):
        raise ShapeError(f"Resize of {list(dims)}: {'scales' if scales else 'sizes'} {list(given)} must be positive")
    if roi is not None and len(roi) != 2 * len(axes):
        raise ShapeError(f"Resize of {list(dims)}: roi {list(roi)} needs 2 x {len(axes)} entries (starts, then ends)")
    lengths_in = [dims[a] for a in axes]
    if 0 in lengths_in:
        raise ShapeError(f"Resize of {list(dims)}: axis {axes[lengths_in.index(0)]} is empty, so there is "
                         "nothing to resample; leave it out of axes")
    if scales is not None:
        axis_scales = [np.float32(s) for s in scales]
        lengths_out = [math.floor(np.float32(n) * s) for n, s in zip(lengths_in, axis_scales)]
    else:
        axis_scales = [np.float32(m) / np.float32(n) for m, n in zip(sizes, lengths_in)]
        lengths_out = list(sizes)
        policy = attrs["keep_aspect_ratio_policy"]
        if policy is not KeepAspectRatioPolicy.STRETCH:
            common = min(axis_scales) if policy is KeepAspectRatioPolicy.NOT_LARGER else max(axis_scales)
            axis_scales = [common] * len(axes)
            lengths_out = [math.floor(common * np.float32(n) + 0.5) for n in lengths_in]
    crop = attrs["coordinate_transformation_mode"] is CoordinateTransformationMode.TF_CROP_AND_RESIZE
    starts = roi[: len(axes)] if roi else (0.0,) * len(axes)
    ends = roi[len(axes):] if roi else (1.0,) * len(axes)
    plans = [AxisPlan(*p) for p in zip(axes, lengths_in, lengths_out, axis_scales, starts, ends)]
    return [p for p in plans if crop or p.scale != 1 or p.length_out != p.length_in]


def source_coords(p: AxisPlan, mode: CoordinateTransformationMode) -> np.ndarray:
    """x_orig for every output index along one axis, per ONNX's coordinate_transformation_mode."""
    x = np.arange(p.length_out, dtype=np.float32)
    n_in, n_out, scale = np.float32(p.length_in), np.float32(p.length_out), np.float32(p.scale)
    if mode is CoordinateTransformationMode.HALF_PIXEL:
        return (x + 0.5) / scale - 0.5
    if mode is CoordinateTransformationMode.HALF_PIXEL_SYMMETRIC:
        adjustment = n_out / (scale * n_in)
        offset = n_in / 2 * (1 - adjustment)
        # onnxruntime adds the float32 offset in double precision; near-ties need the same
        return (np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(scale) - 0.5).astype(np.float32)
    if mode is CoordinateTransformationMode.PYTORCH_HALF_PIXEL:
        return (x + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(x)
    if mode is CoordinateTransformationMode.ALIGN_CORNERS:
        return x * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(x)
    if mode is CoordinateTransformationMode.ASYMMETRIC:
        return x / scale
    start, end = np.float32(p.roi_start), np.float32(p.roi_end)
    if n_out == 1:
        return np.full_like(x, (start + end) / 2 * (n_in - 1))
    return start * (n_in - 1) + x * (end - start) * (n_in - 1) / (n_out - 1)


def _nearest_index(coords: np.ndarray, mode: NearestMode, length: int) -> np.ndarray:
    rounded = {
        NearestMode.ROUND_PREFER_FLOOR: lambda c: np.ceil(c - 0.5),
        NearestMode.ROUND_PREFER_CEIL: lambda c: np.floor(c + 0.5),
        NearestMode.FLOOR: np.floor,
        NearestMode.CEIL: np.ceil,
    }[mode](coords)
    return np.clip(rounded, 0, length - 1).astype(np.intp)


def _along(values: np.ndarray, axis: int, rank: int) -> np.ndarray:
    """A 1-D array shaped to broadcast along `axis` of a rank-`rank` tensor."""
    return values.reshape([-1 if i == axis else 1 for i in range(rank)])


def _resize_shape(x: TensorType, **attrs) -> TensorType:
    out = list(x.shape)
    for p in plan(x.shape, **attrs):
        out[p.axis] = p.length_out
    if attrs["mode"] is ResizeMode.LINEAR and not x.dtype.is_float:
        raise ShapeError(f"Resize mode linear interpolates, so it needs a float tensor, got {x}")
    return x.with_shape(tuple(out))


def _resize_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: ResizeAttrs) -> int:
    """Linear: one lerp a + w * (b - a), 3 FLOPs, per element written by each 1-D pass."""
    if attrs.mode is not ResizeMode.LINEAR:
        return 0
    dims = list(inputs[0].shape)
    total = 0
    for p in plan(inputs[0].shape, **attr_dict(attrs)):
        dims[p.axis] = p.length_out
        total += 3 * math.prod(dims)
    return total


@declare("Resize", ResizeAttrs, outputs=("Y",), shape=_resize_shape, flops=_resize_flops,
         onnx_inputs_as_attrs={1: "roi", 2: "scales", 3: "sizes"})
def Resize(x, **attrs):
    """Resample X to a new size by nearest or (multi-)linear interpolation."""
    transform = attrs["coordinate_transformation_mode"]
    outside = np.zeros((1,) * x.ndim, dtype=bool)
    y = x
    for p in plan(x.shape, **attrs):
        coords = source_coords(p, transform)
        if transform is CoordinateTransformationMode.TF_CROP_AND_RESIZE:
            outside = outside | _along((coords < 0) | (coords > p.length_in - 1), p.axis, x.ndim)
        if attrs["mode"] is ResizeMode.NEAREST:
            y = np.take(y, _nearest_index(coords, attrs["nearest_mode"], p.length_in), axis=p.axis)
            continue
        clamped = np.clip(coords, 0, p.length_in - 1)
        low = np.floor(clamped).astype(np.intp)
        high = np.minimum(low + 1, p.length_in - 1)
        weight = _along(clamped - low, p.axis, x.ndim)
        y = np.take(y, low, axis=p.axis) * (1 - weight) + np.take(y, high, axis=p.axis) * weight
    y = np.where(outside, attrs["extrapolation_value"], y) if outside.any() else y
    return np.ascontiguousarray(y, dtype=x.dtype)
