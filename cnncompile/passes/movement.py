"""Data movement that cancels: consecutive Transposes, and chains of reshapes.

Transpose(Transpose(x, p), q) reads axis p[q[j]] of x at output axis j, so it is one
Transpose by the composition r[j] = p[q[j]], and nothing at all when r is the identity.
Reshape, Flatten, Squeeze and Unsqueeze all keep the elements in row-major order and only
relabel the shape, so any chain of them is one Reshape to the last shape, and none when
that is the shape it started from. Both rewrites drop a node without recomputing a value.
"""

from __future__ import annotations

from cnncompile.ir.graph import Value
from cnncompile.ops.tensor import Flatten, Reshape, Squeeze, Transpose, Unsqueeze
from cnncompile.passes import pattern as P
from cnncompile.passes.pattern import Match

RESHAPES = (Reshape, Flatten, Squeeze, Unsqueeze)


def _perm(node_attrs, rank: int) -> tuple[int, ...]:
    return node_attrs.perm if node_attrs.perm is not None else tuple(reversed(range(rank)))


def _identity(perm: tuple[int, ...]) -> bool:
    return perm == tuple(range(len(perm)))


@P.rule(P.op(Transpose, P.op(Transpose, P.var("x"), name="inner"), name="outer"))
def merge_transposes(m: Match) -> list[Value]:
    """Transpose -> Transpose becomes one Transpose, or none when they cancel."""
    rank = m["x"].type.rank
    inner, outer = _perm(m.node("inner").attrs, rank), _perm(m.node("outer").attrs, rank)
    composed = tuple(inner[j] for j in outer)
    if _identity(composed):
        return [m["x"]]
    return m.add_node(Transpose, [m["x"]], perm=composed, name=m.node("outer").name)


def _is_identity_transpose(m: Match) -> str | None:
    return None if _identity(_perm(m.root.attrs, m["x"].type.rank)) else "it permutes the axes"


@P.rule(P.op(Transpose, P.var("x")), check=_is_identity_transpose)
def drop_identity_transpose(m: Match) -> list[Value]:
    """A Transpose by the identity permutation is its input."""
    return [m["x"]]


@P.rule(P.op(RESHAPES, P.op(RESHAPES, P.var("x"), name="inner"), name="outer"))
def merge_reshapes(m: Match) -> list[Value]:
    """Two reshapes in a row become one Reshape to the last shape, or none when it is x's shape."""
    x, shape = m["x"], m.root.outputs[0].type.shape
    if x.type.shape == shape:
        return [x]
    return m.add_node(Reshape, [x], shape=shape, name=m.node("outer").name)


def _is_identity_reshape(m: Match) -> str | None:
    return None if m["x"].type.shape == m.root.outputs[0].type.shape else "it changes the shape"


@P.rule(P.op(RESHAPES, P.var("x")), check=_is_identity_reshape)
def drop_identity_reshape(m: Match) -> list[Value]:
    """A reshape to the shape its input already has is its input."""
    return [m["x"]]


MOVEMENT_RULES = [merge_transposes, drop_identity_transpose, merge_reshapes, drop_identity_reshape]
