"""Dense layers: MatMul + Add becomes Gemm, and the reshape feeding a Gemm becomes one Flatten.

MatMul(A, B) + C with 2-D A and B and a C that broadcasts to the product's shape is
Gemm(A, B, C) with alpha = beta = 1: one node whose bias add happens in the GEMM's
epilogue. A classifier head reshapes its (N, C, 1, 1) features to (N, C) before the
Gemm, as a Flatten, a Reshape to [N, -1], a Squeeze or a chain of them; every such chain
that keeps the batch axis and folds the rest is Flatten(axis=1), the one form a backend
lowers to a free view.
"""

from __future__ import annotations

import numpy as np

from cnncompile.ir.graph import Value
from cnncompile.ops.elementwise import Add
from cnncompile.ops.linalg import Gemm, MatMul
from cnncompile.ops.tensor import Flatten
from cnncompile.passes import pattern as P
from cnncompile.passes.movement import RESHAPES
from cnncompile.passes.pattern import Match

MATRIX = P.where(lambda t: t.rank == 2, "not a matrix (Gemm takes 2-D operands)")


def _bias_fits(m: Match) -> str | None:
    c, product = m["c"], m["product"].type.shape
    try:
        fits = np.broadcast_shapes(c.type.shape, product) == product
    except ValueError:
        fits = False
    return None if fits else f"%{c.name} {c.type} does not broadcast to the product's shape {list(product)}"


@P.rule(P.op(Add, P.op(MatMul, P.var("a", shape=MATRIX), P.var("b", shape=MATRIX), name="product",
                       single_use=True), P.var("c")), check=_bias_fits)
def matmul_add_to_gemm(m: Match) -> list[Value]:
    """MatMul -> Add becomes Gemm with C."""
    return m.add_node(Gemm, [m["a"], m["b"], m["c"]], name=m.node("product").name)


def _flattens_batch(m: Match) -> str | None:
    x, flat, gemm = m["x"], m.node("flat"), m.node("gemm")
    if gemm.attrs.transA:
        return "transA reads A as (K, N), not (N, K)"
    if flat.op is Flatten and flat.attrs.axis == 1:
        return "already a Flatten(axis=1)"
    if x.type.rank < 2 or x.type.shape[0] != m["flat"].type.shape[0] or x.type.rank == 2:
        return f"it does not fold %{x.name} {x.type} to (N, K) keeping the batch axis"
    return None


@P.rule(P.op(Gemm, P.op(RESHAPES, P.var("x"), name="flat"), P.var("b"), P.opt(P.var("c")), name="gemm"),
        check=_flattens_batch)
def flatten_before_gemm(m: Match) -> list[Value]:
    """A reshape of (N, ...) to (N, K) before a Gemm becomes Flatten(axis=1)."""
    gemm = m.node("gemm")
    (flat,) = m.add_node(Flatten, [m["x"]], axis=1, name=m.node("flat").name)
    return m.add_node(Gemm, [flat, *gemm.inputs[1:]], gemm.attrs, name=gemm.name)


GEMM_RULES = [matmul_add_to_gemm, flatten_before_gemm]
