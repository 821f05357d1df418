"""Reads and writes at computed positions: Expand, Tile, GatherElements, GatherND,
ScatterElements, ScatterND, Compress.

Each output element is an input element picked by its position (Expand, Tile), by an
index tensor (the gathers), or an input element updated by the elements that an index
tensor sends to it (the scatters). Where the output's shape depends on an input's values
(Expand's shape, Tile's repeats, Compress's condition), that input is kept as an
attribute, so it must be known at compile time; the others may be run-time tensors.

Indices may be negative (counting from the end of their axis), as ONNX allows; an index
outside [-size, size) is an error in the reference, while compiled kernels clamp it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.registry import declare, normalize_axis
from cnncompile.ops.tensor import no_arithmetic

INDEX_DTYPES = (DType.INT32, DType.INT64)


def _check_indices(op: str, indices: TensorType) -> None:
    if indices.dtype not in INDEX_DTYPES:
        raise ShapeError(f"{op} indices must be int32 or int64, got {indices}")


def wrapped(op: str, indices: np.ndarray, size: int | np.ndarray, what: str) -> np.ndarray:
    """Indices made non-negative, after checking each lies in [-size, size) of its axis."""
    indices = indices.astype(np.int64)
    if indices.size and (np.any(indices < -size) or np.any(indices >= size)):
        raise ShapeError(f"{op}: indices range over [{indices.min()}, {indices.max()}], outside {what}; an index "
                         "into an axis of size s must lie in -s..s-1")
    return np.where(indices < 0, indices + size, indices)


def _per_update(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    """A scatter with a reduction combines each update once; a plain one only copies."""
    return 0 if attrs.reduction is ScatterReduction.NONE else inputs[2].numel


# -- Expand and Tile ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpandAttrs:
    shape: tuple[int, ...]


def _expanded(dims: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(dims, shape))
    except ValueError:
        raise ShapeError(f"Expand: input {list(dims)} does not broadcast with shape {list(shape)}; each dim "
                         "must be equal or 1 on one side") from None


def _expand_shape(x: TensorType, *, shape: tuple[int, ...]) -> TensorType:
    if any(d < 0 for d in shape):
        raise ShapeError(f"Expand: shape {list(shape)} has negative dims")
    return x.with_shape(_expanded(x.shape, shape))


@declare("Expand", ExpandAttrs, inputs=("input",), outputs=("output",), shape=_expand_shape,
         flops=no_arithmetic, onnx_inputs_as_attrs={1: "shape"})
def Expand(x, *, shape):
    """The input broadcast (NumPy rules, both ways) with `shape`."""
    return np.ascontiguousarray(np.broadcast_to(x, _expanded(x.shape, shape)))


@dataclass(frozen=True)
class TileAttrs:
    repeats: tuple[int, ...]


def _tile_shape(x: TensorType, *, repeats: tuple[int, ...]) -> TensorType:
    if len(repeats) != x.rank or any(r < 0 for r in repeats):
        raise ShapeError(f"Tile of {list(x.shape)}: repeats {list(repeats)} needs one non-negative entry per axis")
    return x.with_shape(tuple(d * r for d, r in zip(x.shape, repeats)))


@declare("Tile", TileAttrs, inputs=("input",), outputs=("output",), shape=_tile_shape, flops=no_arithmetic,
         onnx_inputs_as_attrs={1: "repeats"})
def Tile(x, *, repeats):
    """The input repeated `repeats[i]` times along each axis i."""
    return np.tile(x, repeats)


# -- GatherElements and ScatterElements -----------------------------------------------------------


@dataclass(frozen=True)
class GatherElementsAttrs:
    axis: int = 0


def _check_elements(op: str, data: TensorType, indices: TensorType, axis: int) -> None:
    """Data and indices agree as the Elements ops need: one rank, indices no wider off the axis."""
    _check_indices(op, indices)
    if data.rank == 0 or indices.rank != data.rank:
        raise ShapeError(f"{op}: indices {list(indices.shape)} must have the rank of data {list(data.shape)} (>= 1)")
    axis = normalize_axis(axis, data.rank, op)
    if any(i > d for a, (i, d) in enumerate(zip(indices.shape, data.shape)) if a != axis):
        raise ShapeError(f"{op}: indices {list(indices.shape)} must not exceed data {list(data.shape)} on any "
                         f"axis but {axis}")


def _gather_elements_shape(data: TensorType, indices: TensorType, *, axis: int) -> TensorType:
    _check_elements("GatherElements", data, indices, axis)
    return data.with_shape(indices.shape)


def _element_positions(op: str, data_shape: tuple[int, ...], indices: np.ndarray, axis: int) -> tuple:
    """Index arrays into data: every position of `indices`, with its value in place of coordinate `axis`."""
    axis = axis % len(data_shape)
    coords = list(np.indices(indices.shape, sparse=True))
    coords[axis] = wrapped(op, indices, data_shape[axis], f"axis {axis} of {list(data_shape)}")
    return tuple(coords)


@declare("GatherElements", GatherElementsAttrs, inputs=("data", "indices"), outputs=("output",),
         shape=_gather_elements_shape, flops=no_arithmetic)
def GatherElements(data, indices, *, axis):
    """out[i][j][k] = data[indices[i][j][k]][j][k] for axis 0 (likewise for the others)."""
    return data[_element_positions("GatherElements", data.shape, indices, axis)]


class ScatterReduction(enum.Enum):
    NONE = "none"
    ADD = "add"
    MUL = "mul"
    MAX = "max"
    MIN = "min"


# np.<ufunc>.at applies every update in turn, duplicates included, as ONNX's reductions do.
_ACCUMULATE = {ScatterReduction.ADD: np.add, ScatterReduction.MUL: np.multiply,
               ScatterReduction.MAX: np.maximum, ScatterReduction.MIN: np.minimum}


def _scatter(data: np.ndarray, positions: tuple, updates: np.ndarray, reduction: ScatterReduction) -> np.ndarray:
    out = data.copy()
    if reduction is ScatterReduction.NONE:
        out[positions] = updates  # with duplicate positions the last update wins, as in onnx.reference
    else:
        _ACCUMULATE[reduction].at(out, positions, updates)
    return out


@dataclass(frozen=True)
class ScatterElementsAttrs:
    axis: int = 0
    reduction: ScatterReduction = ScatterReduction.NONE


def _scatter_elements_shape(data: TensorType, indices: TensorType, updates: TensorType, *, axis: int,
                            reduction: ScatterReduction) -> TensorType:
    _check_elements("ScatterElements", data, indices, axis)
    if updates.shape != indices.shape or updates.dtype != data.dtype:
        raise ShapeError(f"ScatterElements: updates {updates} must have the shape of indices {list(indices.shape)} "
                         f"and the dtype of data {data}")
    return data


@declare("ScatterElements", ScatterElementsAttrs, inputs=("data", "indices", "updates"), outputs=("output",),
         shape=_scatter_elements_shape, flops=_per_update)
def ScatterElements(data, indices, updates, *, axis, reduction):
    """A copy of data where out[indices[i][j]][j] = f(out[...], updates[i][j]) for axis 0 (likewise others)."""
    return _scatter(data, _element_positions("ScatterElements", data.shape, indices, axis), updates, reduction)


# -- GatherND and ScatterND -------------------------------------------------------------------------


@dataclass(frozen=True)
class GatherNDAttrs:
    batch_dims: int = 0


def _gather_nd_shape(data: TensorType, indices: TensorType, *, batch_dims: int) -> TensorType:
    _check_indices("GatherND", indices)
    b = batch_dims
    depth = indices.shape[-1] if indices.rank else 0
    if indices.rank < 1 or not 0 <= b < min(data.rank, indices.rank) or not 1 <= depth <= data.rank - b:
        raise ShapeError(f"GatherND with batch_dims={b}: indices {list(indices.shape)} must end in a tuple length "
                         f"from 1 to rank(data) - batch_dims for data {list(data.shape)}")
    if indices.shape[:b] != data.shape[:b]:
        raise ShapeError(f"GatherND: the {b} batch dims of data {list(data.shape)} and indices "
                         f"{list(indices.shape)} differ")
    return data.with_shape(indices.shape[:-1] + data.shape[b + depth:])


def nd_positions(op: str, data_shape: tuple[int, ...], indices: np.ndarray, batch_dims: int = 0) -> tuple:
    """Index arrays into data for each index tuple (indices' last axis), behind the batch coordinates."""
    b, depth = batch_dims, indices.shape[-1]
    bounds = np.array(data_shape[b:b + depth])
    tuples = wrapped(op, indices, bounds, f"data {list(data_shape)}")
    batch = np.indices(indices.shape[:b], sparse=True) if b else ()
    batch = tuple(np.expand_dims(c, tuple(range(b, indices.ndim - 1))) for c in batch)
    return (*batch, *np.moveaxis(tuples, -1, 0))


@declare("GatherND", GatherNDAttrs, inputs=("data", "indices"), outputs=("output",), shape=_gather_nd_shape,
         flops=no_arithmetic)
def GatherND(data, indices, *, batch_dims):
    """The slices of data that the index tuples along indices' last axis name, per batch entry."""
    return data[nd_positions("GatherND", data.shape, indices, batch_dims)]


@dataclass(frozen=True)
class ScatterNDAttrs:
    reduction: ScatterReduction = ScatterReduction.NONE


def _scatter_nd_shape(data: TensorType, indices: TensorType, updates: TensorType, *,
                      reduction: ScatterReduction) -> TensorType:
    _check_indices("ScatterND", indices)
    depth = indices.shape[-1] if indices.rank else 0
    if indices.rank < 1 or not 1 <= depth <= data.rank:
        raise ShapeError(f"ScatterND: indices {list(indices.shape)} must end in a tuple length from 1 to the rank "
                         f"of data {list(data.shape)}")
    want = indices.shape[:-1] + data.shape[depth:]
    if updates.shape != want or updates.dtype != data.dtype:
        raise ShapeError(f"ScatterND: updates {updates} must be {data.dtype.value}{list(want)} "
                         f"(indices' leading dims, then data's dims past the index tuple)")
    return data


@declare("ScatterND", ScatterNDAttrs, inputs=("data", "indices", "updates"), outputs=("output",),
         shape=_scatter_nd_shape, flops=_per_update)
def ScatterND(data, indices, updates, *, reduction):
    """A copy of data where each slice that an index tuple names becomes f(slice, its update)."""
    return _scatter(data, nd_positions("ScatterND", data.shape, indices), updates, reduction)


# -- Compress ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CompressAttrs:
    """`condition` decides the output's length, so it is an attribute that must be known at compile
    time; a bool array, which is what it exports back to."""

    condition: np.ndarray
    axis: int | None = None


def _compressed_length(dims: tuple[int, ...], condition: np.ndarray, axis: int | None) -> int:
    size = math.prod(dims) if axis is None else dims[normalize_axis(axis, len(dims), "Compress")]
    if condition.ndim != 1 or condition.dtype != bool or len(condition) > size:
        raise ShapeError(f"Compress of {list(dims)}: condition {condition.dtype}{list(condition.shape)} must be "
                         f"1-D bool with at most the {size} entries of "
                         f"{'the flattened input' if axis is None else f'axis {axis}'}")
    return int(condition.sum())


def _compress_shape(x: TensorType, *, condition: np.ndarray, axis: int | None) -> TensorType:
    kept = _compressed_length(x.shape, condition, axis)
    if axis is None:
        return x.with_shape((kept,))
    axis = normalize_axis(axis, x.rank, "Compress")
    return x.with_shape(x.shape[:axis] + (kept,) + x.shape[axis + 1:])


@declare("Compress", CompressAttrs, inputs=("input",), outputs=("output",), shape=_compress_shape,
         flops=no_arithmetic, onnx_inputs_as_attrs={1: "condition"})
def Compress(x, *, condition, axis):
    """The slices along `axis` (elements of the flattened input, without one) whose condition is true."""
    _compressed_length(x.shape, condition, axis)
    return np.compress(condition, x, axis=axis)
