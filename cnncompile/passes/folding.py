"""Constant folding: a node whose result is known at compile time becomes a constant.

The importer already folds as it reads (an exporter's Shape -> Gather -> Concat ->
Reshape chains arrive as constants); this pass does the same for whatever other passes
leave behind, and for graphs built by hand. A node folds when all its inputs are
constants, or when its op is value-independent (Shape) and shapes are static. It runs the
op's own reference kernel, in the graph's declared dtype, so the constant holds exactly
what that node would have produced at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnncompile.ir.graph import Graph, Node
from cnncompile.passes.rewrite import Rejection, RewriteLog


@dataclass(frozen=True)
class FoldOptions:
    """`max_elements` keeps a fold from turning a small node (ConstantOfShape) into a huge weight."""

    max_elements: int = 1 << 22


def _foldable(graph: Graph, node: Node) -> bool:
    if node.op.value_independent and node.inputs:
        return True
    return all(graph.is_constant(v) for v in node.inputs)


def fold_constants(graph: Graph, options: FoldOptions = FoldOptions()) -> tuple[Graph, RewriteLog]:
    """Evaluate nodes whose inputs are all constants (or only their shapes matter) into constants."""
    log = RewriteLog()
    kept: list[Node] = []
    for node in graph.nodes:
        if not _foldable(graph, node):
            kept.append(node)
            continue
        size = sum(v.type.numel for v in node.outputs)
        if size > options.max_elements:
            log.rejections.append(Rejection("fold-constants", node.name, f"its result has {size} elements, more "
                                            f"than max_elements = {options.max_elements}"))
            kept.append(node)
            continue
        args = [graph.constants[v] if graph.is_constant(v) else np.broadcast_to(np.zeros((), v.type.dtype.numpy),
                                                                                   v.type.shape)
                for v in node.inputs]
        for value, result in zip(node.outputs, node.op.run(args, node.attrs)):
            graph.constants[value] = np.require(np.asarray(result, value.type.dtype.numpy), requirements="C")
        log.fired["fold-constants"] += 1
    graph.nodes = kept
    graph.drop_unused_constants()
    return graph, log
