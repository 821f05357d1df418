"""Matrix products: Gemm and MatMul."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops.registry import declare


@dataclass(frozen=True)
class GemmAttrs:
    alpha: float = 1.0
    beta: float = 1.0
    transA: int = 0
    transB: int = 0


def _gemm_shape(a: TensorType, b: TensorType, c: TensorType | None = None, *, transA: int, transB: int,
                **_) -> TensorType:
    if a.rank != 2 or b.rank != 2:
        raise ShapeError(f"Gemm needs 2-D A and B, got A {a} and B {b}; use MatMul for batched products")
    if a.dtype != b.dtype or (c is not None and not a.dtype.takes_parameter(c.dtype)):
        raise ShapeError(f"Gemm operands must share one dtype, got A {a}, B {b}" + (f", C {c}" if c else ""))
    m, k = a.shape[::-1] if transA else a.shape
    k_b, n = b.shape[::-1] if transB else b.shape
    if k != k_b:
        raise ShapeError(
            f"Gemm: A {a} (transA={transA}) gives K={k} but B {b} (transB={transB}) gives K={k_b}; "
            "the inner dims must agree (check transA/transB)"
        )
    if c is not None and not _broadcasts_to(c.shape, (m, n)):
        raise ShapeError(f"Gemm: C {c} does not broadcast to the output shape [{m}, {n}]")
    return TensorType((m, n), a.dtype, a.layout)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _gemm_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: GemmAttrs) -> int:
    """2*M*N*K for the product, and 2*M*N more to scale and add C."""
    a = inputs[0]
    k = a.shape[0] if attrs.transA else a.shape[1]
    mn = outputs[0].numel
    return 2 * mn * k + (2 * mn if len(inputs) > 2 else 0)


@declare("Gemm", GemmAttrs, inputs=("A", "B", "C?"), shape=_gemm_shape, flops=_gemm_flops)
def Gemm(a, b, c=None, *, alpha, beta, transA, transB):
    """alpha * op(A) @ op(B) + beta * C, op transposing when transA/transB is set; C broadcasts."""
    y = alpha * ((a.T if transA else a) @ (b.T if transB else b))
    if c is not None:
        y = y + beta * c
    return y.astype(a.dtype, copy=False)


def _matmul_shape(a: TensorType, b: TensorType, **_) -> TensorType:
    if a.rank == 0 or b.rank == 0:
        raise ShapeError(f"MatMul needs operands of rank >= 1, got A {a} and B {b}; use Mul to scale by a scalar")
    if a.dtype != b.dtype:
        raise ShapeError(f"MatMul operands must share one dtype, got A {a} and B {b}")
    k_b = b.shape[-2] if b.rank > 1 else b.shape[0]
    if a.shape[-1] != k_b:
        raise ShapeError(
            f"MatMul: A {a} has K={a.shape[-1]} in its last dim but B {b} has K={k_b} in its "
            f"{'second-to-last' if b.rank > 1 else 'only'} dim; they must agree"
        )
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(
            f"MatMul: the batch dims of A {a} and B {b} ({list(a.shape[:-2])} and {list(b.shape[:-2])}) "
            "do not broadcast"
        ) from None
    # A 1-D A is a row vector and a 1-D B a column vector, their unit dim dropped from the result.
    return TensorType((*batch, *a.shape[-2:-1], *(b.shape[-1:] if b.rank > 1 else ())), a.dtype)


def _matmul_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    """2*M*N*K per batch: one multiply-add per output element and step of K."""
    return 2 * outputs[0].numel * inputs[0].shape[-1]


@declare("MatMul", inputs=("A", "B"), shape=_matmul_shape, flops=_matmul_flops)
def MatMul(a, b):
    """A @ B with NumPy semantics: batch dims broadcast, a 1-D operand is a vector."""
    return np.matmul(a, b)
