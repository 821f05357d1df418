"""Ranking along one axis: ArgMax, ArgMin, TopK, Hardmax.

Ties go to the lower index, as ONNX asks of ArgMax (unless select_last_index) and Hardmax
and as onnxruntime orders TopK; every kernel is written so that NumPy's order of equal
elements cannot decide it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.registry import declare, normalize_axis, per_input, per_output


def _first_extreme(x: np.ndarray, axis: int, largest: bool, last: bool) -> np.ndarray:
    """The index of the largest (or smallest) element along `axis`, keepdims: the first one, or the last."""
    pick = np.argmax if largest else np.argmin
    if not last:
        return pick(x, axis=axis, keepdims=True)  # NumPy returns the first of equal extremes
    return x.shape[axis] - 1 - pick(np.flip(x, axis), axis=axis, keepdims=True)


@dataclass(frozen=True)
class ArgAttrs:
    axis: int = 0
    keepdims: int = 1
    select_last_index: int = 0


def _arg_shape(op: str):
    def rule(x: TensorType, *, axis: int, keepdims: int, select_last_index: int) -> TensorType:
        if x.rank == 0:
            raise ShapeError(f"{op} needs an input of rank >= 1, got {x}")
        axis = normalize_axis(axis, x.rank, op)
        if x.shape[axis] == 0:
            raise ShapeError(f"{op} along axis {axis} of {list(x.shape)}: an empty axis has no extreme")
        shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape)) if keepdims else \
            tuple(d for i, d in enumerate(x.shape) if i != axis)
        return TensorType(shape, DType.INT64)

    return rule


def _arg(x: np.ndarray, axis: int, keepdims: int, select_last_index: int, largest: bool) -> np.ndarray:
    axis = axis % x.ndim
    index = _first_extreme(x, axis, largest, bool(select_last_index)).astype(np.int64)
    return index if keepdims else np.squeeze(index, axis=axis)


@declare("ArgMax", ArgAttrs, inputs=("data",), outputs=("reduced",), shape=_arg_shape("ArgMax"),
         flops=per_input(1))
def ArgMax(x, *, axis, keepdims, select_last_index):
    """The index of the largest element along `axis` (the first of equal ones, or the last)."""
    return _arg(x, axis, keepdims, select_last_index, largest=True)


@declare("ArgMin", ArgAttrs, inputs=("data",), outputs=("reduced",), shape=_arg_shape("ArgMin"),
         flops=per_input(1))
def ArgMin(x, *, axis, keepdims, select_last_index):
    """The index of the smallest element along `axis` (the first of equal ones, or the last)."""
    return _arg(x, axis, keepdims, select_last_index, largest=False)


@dataclass(frozen=True)
class HardmaxAttrs:
    """Opset-13 semantics: along `axis` alone (older opsets flattened from it, as Softmax did)."""

    axis: int = -1


def _hardmax_shape(x: TensorType, *, axis: int) -> TensorType:
    if x.rank == 0:
        raise ShapeError(f"Hardmax needs an input of rank >= 1, got {x}")
    normalize_axis(axis, x.rank, "Hardmax")
    return x


@declare("Hardmax", HardmaxAttrs, inputs=("input",), outputs=("output",), shape=_hardmax_shape,
         flops=per_output(1))
def Hardmax(x, *, axis):
    """1 where the first largest element along `axis` is, 0 elsewhere."""
    axis = axis % x.ndim
    positions = np.arange(x.shape[axis]).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
    return (positions == _first_extreme(x, axis, largest=True, last=False)).astype(x.dtype)


@dataclass(frozen=True)
class TopKAttrs:
    """`k` is TopK's second input from opset 10 on (an attribute before), known at compile time and kept
    as the 1-D one-element tensor ONNX takes, which export writes back as such; `count` reads it."""

    k: tuple[int, ...]
    axis: int = -1
    largest: int = 1
    sorted: int = 1

    @property
    def count(self) -> int:
        return self.k[0]


def _topk_shape(x: TensorType, *, k: tuple[int, ...], axis: int, largest: int, sorted: int) -> list[TensorType]:
    if x.rank == 0:
        raise ShapeError(f"TopK needs an input of rank >= 1, got {x}")
    axis = normalize_axis(axis, x.rank, "TopK")
    if len(k) != 1:
        raise ShapeError(f"TopK: K must be one value, got {list(k)}")
    (k,) = k
    if not 0 <= k <= x.shape[axis]:
        raise ShapeError(f"TopK: k={k} is out of range for axis {axis} of {list(x.shape)}; "
                         f"use 0 <= k <= {x.shape[axis]}")
    shape = tuple(k if i == axis else d for i, d in enumerate(x.shape))
    return [x.with_shape(shape), TensorType(shape, DType.INT64)]


def _topk_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: TopKAttrs) -> int:
    """A comparison per element per place chosen: the selection cnncompile's kernels make."""
    return inputs[0].numel * max(attrs.count, 1)


def _topk_order(x: np.ndarray, axis: int, largest: bool) -> np.ndarray:
    """Indices along `axis` ordering x by value (descending if largest), equal values by ascending index.

    A stable ascending sort keeps equal values in index order; for descending, the input
    is sorted reversed and the result reversed back, which again leaves equal values in
    index order (negating x instead would wrap unsigned and the lowest integers).
    """
    if not largest:
        return np.argsort(x, axis=axis, kind="stable")
    n = x.shape[axis]
    return n - 1 - np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)


@declare("TopK", TopKAttrs, inputs=("X",), outputs=("Values", "Indices"), shape=_topk_shape,
         flops=_topk_flops, onnx_inputs_as_attrs={1: "k"})
def TopK(x, *, k, axis, largest, sorted):
    """The k largest (or smallest) elements along `axis` and their int64 indices, in order.

    Always sorted: with sorted=0 ONNX leaves the order unspecified, and sorted is one such order.
    """
    axis = axis % x.ndim
    indices = np.take(_topk_order(x, axis, bool(largest)), np.arange(k[0]), axis=axis)
    return np.take_along_axis(x, indices, axis=axis), indices.astype(np.int64)
