"""Reductions: Softmax and LogSoftmax along an axis, the ReduceX family over axes, CumSum,
CumProd and LpNormalization along an axis. Ranking by value (ArgMax, TopK, Hardmax) lives in `ranking.py`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops.registry import CostRule, OpDef, ShapeRule, declare, normalize_axis, per_output


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
    """Opset 18 semantics, which read opset 13's (and ReduceSum-13's) `axes` input as the same field:
    older opsets' `axes` attribute and the later `axes` input both land here."""

    axes: tuple[int, ...] | None = None
    keepdims: int = 1
    noop_with_empty_axes: int = 0


def reduced_axes(rank: int, axes: tuple[int, ...] | None, noop_with_empty_axes: int, op: str) -> tuple[int, ...]:
    """The sorted axes to reduce; empty or missing axes mean all of them, or none when noop is set."""
    if not axes:
        return () if noop_with_empty_axes else tuple(range(rank))
    reduced = sorted(normalize_axis(axis, rank, op) for axis in axes)
    if len(set(reduced)) != len(reduced):
        raise ShapeError(f"{op}: axes {list(axes)} name an axis twice for an input of rank {rank}")
    return tuple(reduced)


def _reduce_shape(op: str) -> ShapeRule:
    def rule(x: TensorType, *, axes, keepdims: int, noop_with_empty_axes: int) -> TensorType:
        reduced = reduced_axes(x.rank, axes, noop_with_empty_axes, op)
        if keepdims:
            return x.with_shape(tuple(1 if i in reduced else d for i, d in enumerate(x.shape)))
        return TensorType(tuple(d for i, d in enumerate(x.shape) if i not in reduced), x.dtype)

    return rule


def _per_input_and_output(per_input: int, per_output: int) -> CostRule:
    """Reductions' arithmetic: `per_input` operations on each element read, `per_output` to finish each result."""

    def rule(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
        return per_input * inputs[0].numel + per_output * outputs[0].numel

    return rule


def _reduction(name: str, per_input: int, per_output: int = 0) -> Callable[[Callable], OpDef]:
    """Declare the ReduceX op whose keepdims result over a tuple of axes `combine(x, axes)` computes.

    Every ReduceX shares the attributes, the shape rule and the axes handling, so each op's
    definition is its one line of NumPy. Reducing over no axes (noop_with_empty_axes) still
    applies the element-wise part, as onnxruntime does: ReduceL1 is then |x|, ReduceSumSquare
    x^2. Results are computed as NumPy promotes them and cast back, so integer inputs
    truncate as onnxruntime's do (ReduceL2 of int32 [1, -2, 3] is int(sqrt(14)) = 3).
    """

    def wrap(combine: Callable) -> OpDef:
        def kernel(x, *, axes, keepdims, noop_with_empty_axes):
            reduced = reduced_axes(x.ndim, axes, noop_with_empty_axes, name)
            out = np.asarray(combine(x, reduced))
            if not keepdims:
                out = out.reshape([d for i, d in enumerate(x.shape) if i not in reduced])
            return out.astype(x.dtype, copy=False)

        kernel.__doc__ = combine.__doc__
        return declare(name, ReduceAttrs, inputs=("data",), outputs=("reduced",), shape=_reduce_shape(name),
                       flops=_per_input_and_output(per_input, per_output), onnx_inputs_as_attrs={1: "axes"})(kernel)

    return wrap


def lowest(dtype: np.dtype) -> np.generic:
    """The identity of max: what ReduceMax of an empty set is (-inf for floats, as ONNX defines it)."""
    if dtype == np.bool_:
        return np.False_
    return dtype.type(-np.inf) if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def highest(dtype: np.dtype) -> np.generic:
    """The identity of min."""
    if dtype == np.bool_:
        return np.True_
    return dtype.type(np.inf) if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).max


@_reduction("ReduceMean", per_input=1, per_output=1)
def ReduceMean(x, axes):
    """Mean of X over `axes` (all axes when none are given), reduced dims kept as 1 if keepdims."""
    return np.mean(x, axis=axes, keepdims=True)


@_reduction("ReduceSum", per_input=1)
def ReduceSum(x, axes):
    """Sum of X over `axes`."""
    return np.sum(x, axis=axes, keepdims=True)


@_reduction("ReduceProd", per_input=1)
def ReduceProd(x, axes):
    """Product of X over `axes` (1 over an empty set)."""
    return np.prod(x, axis=axes, keepdims=True)


@_reduction("ReduceMax", per_input=1)
def ReduceMax(x, axes):
    """Largest element of X over `axes` (-inf over an empty set)."""
    return np.max(x, axis=axes, keepdims=True, initial=lowest(x.dtype))


@_reduction("ReduceMin", per_input=1)
def ReduceMin(x, axes):
    """Smallest element of X over `axes` (+inf over an empty set)."""
    return np.min(x, axis=axes, keepdims=True, initial=highest(x.dtype))


@_reduction("ReduceL1", per_input=2)
def ReduceL1(x, axes):
    """Sum of |X| over `axes`."""
    return np.sum(np.abs(x), axis=axes, keepdims=True)


@_reduction("ReduceL2", per_input=2, per_output=1)
def ReduceL2(x, axes):
    """sqrt(sum of X^2) over `axes`."""
    return np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True))


@_reduction("ReduceSumSquare", per_input=2)
def ReduceSumSquare(x, axes):
    """Sum of X^2 over `axes`."""
    return np.sum(np.square(x), axis=axes, keepdims=True)


@_reduction("ReduceLogSum", per_input=1, per_output=1)
def ReduceLogSum(x, axes):
    """log(sum of X) over `axes` (-inf over an empty set)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.sum(x, axis=axes, keepdims=True))


@_reduction("ReduceLogSumExp", per_input=3, per_output=2)
def ReduceLogSumExp(x, axes):
    """log(sum of exp(X)) over `axes`, shifted by the largest element so exp cannot overflow."""
    peak = np.max(x, axis=axes, keepdims=True, initial=lowest(x.dtype))
    shift = np.where(np.isfinite(peak), peak, 0)  # an empty set or all -inf: nothing to shift by
    with np.errstate(divide="ignore"):
        return shift + np.log(np.sum(np.exp(x - shift), axis=axes, keepdims=True))


# -- along one axis: CumSum, CumProd, LpNormalization -----------------------------------------


@dataclass(frozen=True)
class ScanAttrs:
    """CumSum's and CumProd's: `axis` is their second input, known at compile time and kept as the
    one-element tensor it is (0-D or 1-D), so that export writes it back as an int64 tensor rather
    than a scalar of X's type."""

    axis: tuple[int, ...]
    exclusive: int = 0
    reverse: int = 0


def scan_axis(axis: tuple[int, ...], rank: int, op: str) -> int:
    if len(axis) != 1:
        raise ShapeError(f"{op}: axis must be one value, got {list(axis)}")
    return normalize_axis(axis[0], rank, op)


def _scan_shape(op: str):
    def rule(x: TensorType, *, axis: tuple[int, ...], exclusive: int, reverse: int) -> TensorType:
        if x.rank == 0:
            raise ShapeError(f"{op} needs an input of rank >= 1, got {x}")
        scan_axis(axis, x.rank, op)
        return x

    return rule


def _scan(x: np.ndarray, accumulate: np.ufunc, op: str, axis: tuple[int, ...], exclusive: int,
          reverse: int) -> np.ndarray:
    """accumulate's running results along the axis, from the end if reverse; exclusive shifts them one
    place on, starting from accumulate's identity."""
    axis = scan_axis(axis, x.ndim, op)
    ordered = np.flip(x, axis) if reverse else x
    running = accumulate.accumulate(ordered, axis=axis, dtype=x.dtype)
    if exclusive:
        start = np.full_like(np.take(running, [0], axis), accumulate.identity)
        running = np.concatenate([start, np.delete(running, -1, axis)], axis=axis)
    return np.ascontiguousarray(np.flip(running, axis) if reverse else running)


@declare("CumSum", ScanAttrs, inputs=("x",), outputs=("y",), shape=_scan_shape("CumSum"), flops=per_output(1),
         onnx_inputs_as_attrs={1: "axis"})
def CumSum(x, *, axis, exclusive, reverse):
    """Running sums along `axis`: y[j] = x[0] + ... + x[j] (up to x[j-1] if exclusive; from the end if reverse)."""
    return _scan(x, np.add, "CumSum", axis, exclusive, reverse)


@declare("CumProd", ScanAttrs, inputs=("x",), outputs=("y",), shape=_scan_shape("CumProd"), flops=per_output(1),
         onnx_inputs_as_attrs={1: "axis"})
def CumProd(x, *, axis, exclusive, reverse):
    """Running products along `axis`: y[j] = x[0] * ... * x[j] (up to x[j-1] if exclusive; from the end if reverse)."""
    return _scan(x, np.multiply, "CumProd", axis, exclusive, reverse)


@dataclass(frozen=True)
class LpNormalizationAttrs:
    axis: int = -1
    p: int = 2


def _lp_normalization_shape(x: TensorType, *, axis: int, p: int) -> TensorType:
    if p not in (1, 2):
        raise ShapeError(f"LpNormalization: p={p}, but ONNX defines only p=1 and p=2")
    if not x.dtype.is_float:
        raise ShapeError(f"LpNormalization takes float16/32/64 inputs, got {x.dtype.value}")
    return _along_axis("LpNormalization")(x, axis=axis)


@declare("LpNormalization", LpNormalizationAttrs, inputs=("input",), outputs=("output",),
         shape=_lp_normalization_shape, flops=per_output(3))
def LpNormalization(x, *, axis, p):
    """x / ||x||_p along `axis`; a vector of norm 0 stays 0, as onnxruntime leaves it."""
    norm = np.sum(np.abs(x) ** p, axis=axis, keepdims=True) ** (1.0 / p)
    return (x / np.where(norm == 0, 1, norm)).astype(x.dtype, copy=False)
