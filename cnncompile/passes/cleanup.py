"""Cleanup: dead code, common subexpressions, and the ops inference does not need.

Each leaves the numbers bit for bit as they were: nothing is recomputed, only dropped or
shared.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ops.elementwise import Dropout, Identity
from cnncompile.passes import pattern as P
from cnncompile.passes.pattern import Match
from cnncompile.passes.rewrite import RewriteLog


def eliminate_dead_code(graph: Graph) -> tuple[Graph, RewriteLog]:
    """Remove nodes whose outputs nothing reads, and constants no node reads."""
    live = set(graph.outputs)
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if any(out in live for out in node.outputs):
            kept.append(node)
            live.update(node.inputs)
    removed = len(graph.nodes) - len(kept)
    graph.nodes = kept[::-1]
    dropped = graph.drop_unused_constants()
    return graph, RewriteLog(Counter({k: n for k, n in (("dead-node", removed), ("unused-constant", dropped)) if n}))


def _frozen(value: Any) -> Any:
    """A hashable stand-in for an attribute value (arrays by content, nested attrs by fields)."""
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, value.tobytes()
    if is_dataclass(value):
        return type(value), tuple(_frozen(getattr(value, f.name)) for f in fields(value))
    return value


def eliminate_common_subexpressions(graph: Graph) -> tuple[Graph, RewriteLog]:
    """Merge nodes with the same op, the same inputs and the same attributes.

    Constants are compared by identity, not content: merging two equal weight tensors
    would make them shared, and shared weights block BatchNorm folding. Nodes that
    produce graph outputs are kept, so every output keeps its own name.
    """
    seen: dict[tuple, Node] = {}
    twin: dict[Value, Value] = {}
    outputs = set(graph.outputs)
    kept: list[Node] = []
    for node in graph.nodes:
        node.inputs = [twin.get(v, v) for v in node.inputs]
        key = (node.op, tuple(node.inputs), _frozen(node.attrs))
        first = seen.setdefault(key, node)
        if first is node or any(out in outputs for out in node.outputs):
            kept.append(node)
            continue
        twin.update(zip(node.outputs, first.outputs))
    merged = len(graph.nodes) - len(kept)
    graph.nodes = kept
    return graph, RewriteLog(Counter({"merged-node": merged} if merged else {}))


@P.rule(P.op(Identity, P.var("x")))
def remove_identity(m: Match) -> list[Value]:
    """Identity(x) is x."""
    return [m["x"]]


def _mask_unread(m: Match) -> str | None:
    return "its mask output is read" if m.used(m.root.outputs[1]) else None


@P.rule(P.op(Dropout, P.var("x")), check=_mask_unread)
def remove_dropout(m: Match) -> list[Value]:
    """Inference-mode Dropout(x) is x (its shape rule refuses training mode)."""
    return [m["x"]]


IDENTITY_RULES = [remove_identity, remove_dropout]
