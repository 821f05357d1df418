"""Per-layer numerics: each node judged on its own, free of the error it inherits.

End to end, float32 rounding compounds through a deep network (on ResNet-50 the float32
error against float64 grows from ~1e-7 after the first layers to ~5e-5 at the output,
for onnxruntime as for us), so the per-op policy of DESIGN.md cannot be applied to a
whole model's output. Instead every node is re-run in float32 on the gold float64
values of its inputs and compared with its gold output: a kernel that is wrong shows up
at its own layer, named, however deep it sits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cnncompile.backends.reference import run_reference
from cnncompile.ir.graph import Graph, Node
from cnncompile.numerics import TOLERANCE, relative_error


@dataclass(frozen=True)
class LayerError:
    node: str
    op: str
    error: float

    @property
    def passed(self) -> bool:
        return self.error <= TOLERANCE["float32"]


def layerwise_errors(graph: Graph, inputs: Mapping[str, np.ndarray]) -> list[LayerError]:
    """One entry per node, in graph order: its float32 error given gold inputs."""
    captured: dict[int, list[np.ndarray]] = {}

    def capture(node: Node, args):
        captured[id(node)] = list(args)
        return None

    run_reference(graph, inputs, dtype="float64", hook=capture)
    errors = []
    for node in graph.nodes:
        gold_args = captured[id(node)]
        gold = node.op.run(gold_args, node.attrs)
        single = [a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a for a in gold_args]
        ours = node.op.run(single, node.attrs)
        error = max((relative_error(o, g) for o, g in zip(ours, gold)), default=0.0)
        errors.append(LayerError(node.name, node.op.name, error))
    return errors
