"""Tensors generated from positions, types and compile-time constants: Range, EyeLike, OneHot,
Trilu, Size, CastLike.

Each output element is decided by where it is (a diagonal, a triangle, a class index)
or by another tensor's type, more than by input values. Range's bounds and OneHot's
depth decide the output's shape, so they are attributes that must be known at compile
time; Trilu's k moves only the boundary, so it may be a run-time tensor. EyeLike and
Size read only their input's type, so they are `value_independent` and fold away at import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.narrow import RoundMode, convert
from cnncompile.ops.registry import declare, normalize_axis, per_output
from cnncompile.ops.tensor import no_arithmetic

# -- Range ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RangeAttrs:
    """Scalars of the output's element type; all three decide its length, so all are attributes."""

    start: np.ndarray
    limit: np.ndarray
    delta: np.ndarray


def _range_length(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> int:
    """ONNX's number_of_elements: max(ceil((limit - start) / delta), 0), computed in double precision."""
    if any(np.size(v) != 1 for v in (start, limit, delta)) or len({start.dtype, limit.dtype, delta.dtype}) > 1:
        raise ShapeError(f"Range: start, limit and delta must be scalars of one element type, got "
                         f"{start.dtype}{list(start.shape)}, {limit.dtype}{list(limit.shape)}, "
                         f"{delta.dtype}{list(delta.shape)}")
    step = float(delta.reshape(()))
    if step == 0:
        raise ShapeError("Range: delta is 0, so the range never reaches its limit; give a non-zero delta")
    return max(math.ceil((float(limit.reshape(())) - float(start.reshape(()))) / step), 0)


def _range_shape(*, start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> TensorType:
    return TensorType((_range_length(start, limit, delta),), DType.of(start.dtype))


@declare("Range", RangeAttrs, inputs=(), outputs=("output",), shape=_range_shape, flops=per_output(2),
         onnx_inputs_as_attrs={0: "start", 1: "limit", 2: "delta"})
def Range(*, start, limit, delta):
    """start + i * delta for i = 0, 1, ... while short of limit."""
    steps = np.arange(_range_length(start, limit, delta)).astype(start.dtype)
    return (start.reshape(()) + steps * delta.reshape(())).astype(start.dtype)


# -- EyeLike, OneHot, Trilu --------------------------------------------------------------------


@dataclass(frozen=True)
class EyeLikeAttrs:
    dtype: DType | None = None
    k: int = 0


def _eye_like_shape(x: TensorType, *, dtype: DType | None, k: int) -> TensorType:
    if x.rank != 2:
        raise ShapeError(f"EyeLike needs a 2-D input, got {x}")
    return TensorType(x.shape, dtype or x.dtype)


@declare("EyeLike", EyeLikeAttrs, inputs=("input",), outputs=("output",), shape=_eye_like_shape,
         flops=no_arithmetic, value_independent=True)
def EyeLike(x, *, dtype, k):
    """Ones on the k-th diagonal (above the main one for k > 0), zeros elsewhere, shaped as the input."""
    return np.eye(*x.shape, k=k, dtype=(dtype.numpy if dtype else x.dtype))


@dataclass(frozen=True)
class OneHotAttrs:
    """`depth` decides the output's shape, so it is an attribute (a float depth truncates, as ONNX casts it)."""

    depth: int
    axis: int = -1


def _one_hot_shape(indices: TensorType, values: TensorType, *, depth: int, axis: int) -> TensorType:
    if indices.dtype is DType.BOOL or values.shape not in ((2,), (1, 2)) or depth < 1:
        raise ShapeError(f"OneHot: indices {indices} must be numeric, values {values} must hold [off, on], and "
                         f"depth {depth} must be positive")
    axis = normalize_axis(axis, indices.rank + 1, "OneHot")
    return TensorType(indices.shape[:axis] + (depth,) + indices.shape[axis:], values.dtype)


@declare("OneHot", OneHotAttrs, inputs=("indices", "values"), outputs=("output",), shape=_one_hot_shape,
         flops=no_arithmetic, onnx_inputs_as_attrs={1: "depth"})
def OneHot(indices, values, *, depth, axis):
    """values[1] where the new `axis` position equals the index (negative ones count from depth), else values[0]."""
    axis = axis % (indices.ndim + 1)
    index = indices.astype(np.int64)  # float indices truncate toward zero
    index = np.expand_dims(np.where(index < 0, index + depth, index), axis)
    classes = np.arange(depth).reshape((depth,) + (1,) * (indices.ndim - axis))
    off, on = values.reshape(-1)
    return np.where(index == classes, on, off).astype(values.dtype)  # out of range: no class matches


@dataclass(frozen=True)
class TriluAttrs:
    upper: int = 1


def _trilu_shape(x: TensorType, k: TensorType | None = None, *, upper: int) -> TensorType:
    if x.rank < 2:
        raise ShapeError(f"Trilu needs an input of rank >= 2 (a stack of matrices), got {x}")
    if k is not None and (k.numel != 1 or k.dtype is not DType.INT64):
        raise ShapeError(f"Trilu: k must be an int64 scalar, got {k}")
    return x


# k only moves the boundary, never the shape, so it may be a run-time tensor.
@declare("Trilu", TriluAttrs, inputs=("input", "k?"), outputs=("output",), shape=_trilu_shape,
         flops=no_arithmetic)
def Trilu(x, k=None, *, upper):
    """Each matrix's upper (or lower) triangle from the k-th diagonal on, zeros elsewhere."""
    diagonal = 0 if k is None else int(k.reshape(()))
    return np.triu(x, diagonal) if upper else np.tril(x, diagonal)


# -- Size and CastLike -------------------------------------------------------------------------


def _size_shape(data: TensorType) -> TensorType:
    return TensorType((), DType.INT64)


@declare("Size", inputs=("data",), outputs=("size",), shape=_size_shape, flops=no_arithmetic,
         value_independent=True)
def Size(data):
    """The number of elements of the input, as an int64 scalar."""
    return np.array(data.size, dtype=np.int64)


@dataclass(frozen=True)
class CastLikeAttrs:
    """`saturate` governs float8 targets only, `round_mode` float8e8m0 only, as for Cast."""

    saturate: int = 1
    round_mode: RoundMode = RoundMode.UP


def _cast_like_shape(x: TensorType, like: TensorType, **_) -> TensorType:
    return TensorType(x.shape, like.dtype)


@declare("CastLike", CastLikeAttrs, inputs=("input", "target_type"), outputs=("output",),
         shape=_cast_like_shape, flops=no_arithmetic)
def CastLike(x, like, *, saturate, round_mode):
    """X converted to the element type of target_type, as Cast converts it.

    The reference sees target_type's array, not its declared type: where it computes
    floats in another precision (float64 mode), a float target rounds as that precision
    (a narrow one it holds in its own type, so a float8 target rounds as float8).
    """
    return convert(x, DType.of(like.dtype), saturate, round_mode)
