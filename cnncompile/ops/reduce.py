"""Reductions over an axis: Softmax, LogSoftmax, ReduceMean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops.registry import declare, normalize_axis, per_output


@dataclass(frozen=True)
class SoftmaxAttrs:
    """Opset-13 semantics: normalise along `axis` alone (older opsets flattened from it)."""

    axis: int = -1


def _along_axis(op: str):
    def rule(x: TensorType, *, axis: int) -> TensorType:
        if x.rank == 0:
            raise ShapeError(f"{op} needs an input of rank >= 1, got {x}")
        normalize_axis(axis, x.rank, op)
        return x

    return rule


@declare("Softmax", SoftmaxAttrs, inputs=("input",), outputs=("output",), shape=_along_axis("Softmax"),
         flops=per_output(5))
def Softmax(x, *, axis):
    """exp(x) / sum(exp(x)) along `axis`."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))  # shifted so the largest term is exp(0)
    return e / e.sum(axis=axis, keepdims=True)


@declare("LogSoftmax", SoftmaxAttrs, inputs=("input",), outputs=("output",), shape=_along_axis("LogSoftmax"),
         flops=per_output(5))
def LogSoftmax(x, *, axis):
    """x - log(sum(exp(x))) along `axis`."""
    shifted = x - x.max(axis=axis, keepdims=True)  # exp cannot overflow, and the sum is >= 1
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@dataclass(frozen=True)
class ReduceAttrs:
    axes: tuple[int, ...] | None = None
    keepdims: int = 1
    noop_with_empty_axes: int = 0


def _reduced_axes(rank: int, axes: tuple[int, ...] | None, noop_with_empty_axes: int, op: str) -> tuple[int, ...]:
    """The sorted axes to reduce; empty or missing axes mean all of them, or none when noop is set."""
    if not axes:
        return () if noop_with_empty_axes else tuple(range(rank))
    reduced = sorted(normalize_axis(axis, rank, op) for axis in axes)
    if len(set(reduced)) != len(reduced):
        raise ShapeError(f"{op}: axes {list(axes)} name an axis twice for an input of rank {rank}")
    return tuple(reduced)


def _reduce_shape(x: TensorType, *, axes, keepdims: int, noop_with_empty_axes: int) -> TensorType:
    reduced = _reduced_axes(x.rank, axes, noop_with_empty_axes, "ReduceMean")
    if keepdims:
        return x.with_shape(tuple(1 if i in reduced else d for i, d in enumerate(x.shape)))
    return TensorType(tuple(d for i, d in enumerate(x.shape) if i not in reduced), x.dtype)


def _mean_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    """One add per input element, one divide per output element."""
    return inputs[0].numel + outputs[0].numel


@declare("ReduceMean", ReduceAttrs, inputs=("data",), outputs=("reduced",), shape=_reduce_shape,
         flops=_mean_flops, onnx_inputs_as_attrs={1: "axes"})
def ReduceMean(x, *, axes, keepdims, noop_with_empty_axes):
    """Mean of X over `axes` (all axes when none are given), reduced dims kept as 1 if keepdims."""
    reduced = _reduced_axes(x.ndim, axes, noop_with_empty_axes, "ReduceMean")
    return np.asarray(np.mean(x, axis=reduced, keepdims=bool(keepdims))).astype(x.dtype, copy=False)
