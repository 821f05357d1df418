"""Activation liveness over the topological order, and the peak memory it implies.

Running the nodes in graph order, a value is allocated when its node runs and freed after
its last reader; graph inputs are live from the start, graph outputs to the end, and
constants (weights) are not activations. While a node runs its inputs and outputs are
live together, so the peak is the largest sum of live bytes over the nodes. Fusion
lowers it: the tensors a fused node keeps in registers are never allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnncompile.ir.graph import Graph, Value


@dataclass(frozen=True)
class MemoryPlan:
    peak_bytes: int
    peak_node: str  # the node running when the peak is reached ("" for a graph of inputs alone)
    live_bytes: tuple[int, ...]  # per node: the activation bytes live while it runs


def plan_memory(graph: Graph, size: Callable[[Value], int] = lambda v: v.type.nbytes) -> MemoryPlan:
    """`size` prices a value in bytes: as stored, unless a backend computes it in another type."""
    freed = graph.last_uses()
    read = {v for node in graph.nodes for v in node.inputs} | set(graph.outputs)
    live = sum(size(v) for v in graph.inputs)
    peak, peak_node, per_node = live, "", []
    for index, node in enumerate(graph.nodes):
        live += sum(size(out) for out in node.outputs)
        per_node.append(live)
        if live > peak:
            peak, peak_node = live, node.name
        live -= sum(size(v) for v in freed.get(index, ()) if not graph.is_constant(v))
        live -= sum(size(out) for out in node.outputs if out not in read)
    return MemoryPlan(peak, peak_node, tuple(per_node))
