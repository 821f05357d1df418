"""Shape arithmetic exporters emit, folded at import: Shape, Gather, Slice, Constant, ConstantOfShape.

Shapes are static in cnncompile, so Shape is `value_independent` and a sub-graph such as
Shape -> Gather -> Concat -> Reshape evaluates to constants when the model is imported.
Gather and Slice are ordinary ops as well: they also index activations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.registry import declare, normalize_axis
from cnncompile.ops.tensor import no_arithmetic, normalize_axes


@dataclass(frozen=True)
class ShapeAttrs:
    start: int = 0
    end: int | None = None


def _dims_range(rank: int, start: int, end: int | None) -> slice:
    """ONNX's start/end: negative counts from the back, then both clamp into [0, rank]."""
    def clamp(i: int) -> int:
        return min(max(i + rank if i < 0 else i, 0), rank)

    return slice(clamp(start), rank if end is None else clamp(end))


def _shape_shape(data: TensorType, *, start: int, end: int | None) -> TensorType:
    return TensorType((len(data.shape[_dims_range(data.rank, start, end)]),), DType.INT64)


@declare("Shape", ShapeAttrs, inputs=("data",), outputs=("shape",), shape=_shape_shape,
         flops=no_arithmetic, value_independent=True)
def Shape(data, *, start, end):
    """The input's dims (those in [start, end)) as a 1-D int64 tensor."""
    return np.array(data.shape[_dims_range(data.ndim, start, end)], dtype=np.int64)


@dataclass(frozen=True)
class GatherAttrs:
    axis: int = 0


def _gather_shape(data: TensorType, indices: TensorType, *, axis: int) -> TensorType:
    if indices.dtype not in (DType.INT32, DType.INT64):
        raise ShapeError(f"Gather indices must be int32 or int64, got {indices}")
    if data.rank == 0:
        raise ShapeError("Gather cannot index a scalar; give data of rank >= 1")
    axis = normalize_axis(axis, data.rank, "Gather")
    return data.with_shape(data.shape[:axis] + indices.shape + data.shape[axis + 1:])


@declare("Gather", GatherAttrs, inputs=("data", "indices"), outputs=("output",), shape=_gather_shape,
         flops=no_arithmetic)
def Gather(data, indices, *, axis):
    """Entries of data picked along `axis` by indices (negative ones count from the end)."""
    size = data.shape[axis]
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise ShapeError(f"Gather: indices range over [{indices.min()}, {indices.max()}] but axis {axis} of "
                         f"{list(data.shape)} has {size} entries; use -{size}..{size - 1}")
    return np.take(data, np.where(indices < 0, indices + size, indices), axis=axis)


@dataclass(frozen=True)
class SliceAttrs:
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    axes: tuple[int, ...] | None = None
    steps: tuple[int, ...] | None = None


def _slice_ranges(dims: tuple[int, ...], starts, ends, axes, steps) -> list[tuple[int, int, int]]:
    """(start, end, step) per input axis after ONNX's clamping; end -1 means "past index 0"."""
    axes = list(range(len(starts))) if axes is None else axes
    steps = (1,) * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ShapeError(f"Slice of {list(dims)}: starts {list(starts)}, ends {list(ends)}, axes {list(axes)} "
                         f"and steps {list(steps)} must have one entry each per sliced axis")
    if 0 in steps:
        raise ShapeError(f"Slice of {list(dims)}: steps {list(steps)} contain 0; a step must be non-zero")
    ranges = [(0, d, 1) for d in dims]
    for axis, start, end, step in zip(normalize_axes(axes, len(dims), "Slice"), starts, ends, steps):
        d = dims[axis]
        start, end = start + d if start < 0 else start, end + d if end < 0 else end
        if step > 0:
            ranges[axis] = (min(max(start, 0), d), min(max(end, 0), d), step)
        else:
            ranges[axis] = (min(max(start, 0), d - 1), min(max(end, -1), d - 1), step)
    return ranges


def _slice_shape(data: TensorType, **attrs) -> TensorType:
    return data.with_shape(tuple(len(range(*r)) for r in _slice_ranges(data.shape, **attrs)))


@declare("Slice", SliceAttrs, inputs=("data",), outputs=("output",), shape=_slice_shape, flops=no_arithmetic,
         onnx_inputs_as_attrs={1: "starts", 2: "ends", 3: "axes", 4: "steps"})
def Slice(data, **attrs):
    """data[starts:ends:steps] along the given axes, with ONNX's clamping."""
    index = tuple(slice(s, None if e < 0 else e, k) for s, e, k in _slice_ranges(data.shape, **attrs))
    return np.ascontiguousarray(data[index])


@dataclass(frozen=True, eq=False)
class ConstantAttrs:
    value: np.ndarray | None = None
    value_float: float | None = None
    value_floats: tuple[float, ...] | None = None
    value_int: int | None = None
    value_ints: tuple[int, ...] | None = None


def _constant_array(**attrs) -> np.ndarray:
    given = [name for name, v in attrs.items() if v is not None]
    if len(given) != 1:
        raise ShapeError(f"Constant needs exactly one of {', '.join(attrs)}, got {given or 'none'}")
    name, value = given[0], attrs[given[0]]
    dtype = {"value_float": np.float32, "value_floats": np.float32,
             "value_int": np.int64, "value_ints": np.int64}.get(name)
    return np.asarray(value, dtype=dtype)


def _constant_shape(**attrs) -> TensorType:
    array = _constant_array(**attrs)
    try:
        return TensorType.of(array)
    except ValueError:
        raise UnsupportedError(f"Constant of element type {array.dtype} is not supported; use one of "
                               + ", ".join(d.value for d in DType)) from None


@declare("Constant", ConstantAttrs, inputs=(), outputs=("output",), shape=_constant_shape, flops=no_arithmetic)
def Constant(**attrs):
    """The tensor held in its one value attribute."""
    return _constant_array(**attrs)


@dataclass(frozen=True, eq=False)
class ConstantOfShapeAttrs:
    shape: tuple[int, ...]
    value: np.ndarray | None = None


def _fill_value(value: np.ndarray | None) -> np.ndarray:
    if value is None:
        return np.zeros((), dtype=np.float32)
    if value.size != 1:
        raise ShapeError(f"ConstantOfShape value must hold one element, got shape {list(value.shape)}")
    return value.reshape(())


def _constant_of_shape_shape(*, shape: tuple[int, ...], value: np.ndarray | None) -> TensorType:
    if any(d < 0 for d in shape):
        raise ShapeError(f"ConstantOfShape shape {list(shape)} has negative dims; every dim must be >= 0")
    return TensorType(shape, DType.of(_fill_value(value).dtype))


@declare("ConstantOfShape", ConstantOfShapeAttrs, inputs=(), outputs=("output",),
         shape=_constant_of_shape_shape, flops=no_arithmetic, onnx_inputs_as_attrs={0: "shape"})
def ConstantOfShape(*, shape, value):
    """A tensor of the given shape filled with one value (float32 zero by default)."""
    fill = _fill_value(value)
    return np.full(shape, fill, dtype=fill.dtype)
