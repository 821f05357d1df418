"""`cnncompile validate`: the optimized, compiled model against the float64 reference.

End to end, each output is compared with the float64 reference of the model as imported
(before any pass), by DESIGN.md's error, within the loosest tolerance of its nodes: their
element type's (float32's, float16's) or their conv algorithm's (Winograd, FFT). When the
error exceeds it, the model is re-run layer by layer, because float32 rounding alone
compounds with depth (ResNet-50 ends near 5e-5 for onnxruntime too): every node's compiled
kernel runs on the gold float64 values of its inputs (rounded to its element type) and is
judged on its own, by its own tolerance. The model passes when every node does; otherwise
the first node that did not is named, with the error its inputs already carried in the
compiled run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cnncompile.api import compile as compile_model
from cnncompile.backends.reference import run_reference
from cnncompile.compiled import CompiledModel
from cnncompile.ir.graph import Graph, Node
from cnncompile.ir.types import DType
from cnncompile.numerics import DTYPE_TOLERANCE, relative_error, tolerance
from cnncompile.resources import estimate_memory, host_limit
from cnncompile.tools.models import random_inputs


@dataclass(frozen=True)
class NodeCheck:
    """One node's kernel on gold inputs (`error`, judged by its own `tolerance`), and how far off its
    inputs were in the compiled run."""

    node: str
    op: str
    error: float
    input_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance

    def as_dict(self) -> dict:
        return {"node": self.node, "op": self.op, "error": _finite(self.error), "input_error": _finite(self.input_error),
                "tolerance": self.tolerance}


@dataclass
class Validation:
    passed: bool
    error: float
    tolerance: float
    target: str
    pipeline: str
    outputs: dict[str, tuple[float, tuple[int, ...]]]
    layers: list[NodeCheck] = field(default_factory=list)

    @property
    def first_divergence(self) -> NodeCheck | None:
        return next((c for c in self.layers if not c.passed), None)

    def as_dict(self) -> dict:
        result = {
            "passed": self.passed, "error": _finite(self.error), "tolerance": self.tolerance,
            "target": self.target, "pipeline": self.pipeline,
            "outputs": {name: {"error": _finite(e), "shape": list(s)} for name, (e, s) in self.outputs.items()},
        }
        if self.layers:
            worst = max(self.layers, key=lambda c: c.error)
            result["layerwise"] = {"nodes": len(self.layers), "max_error": _finite(worst.error),
                                   "worst_node": worst.node}
            divergence = self.first_divergence
            result["first_divergence"] = divergence.as_dict() if divergence else None
        return result

    def report(self) -> str:
        lines = [f"{name}: error {e:.2e} (shape {list(s)})" for name, (e, s) in self.outputs.items()]
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"end to end: error {self.error:.2e}, tolerance {self.tolerance:g} ({self.target}, -p {self.pipeline})")
        if self.layers:
            worst = max(self.layers, key=lambda c: c.error)
            lines.append(f"layer by layer: {len(self.layers)} nodes, worst {worst.node} ({worst.op}) "
                         f"error {worst.error:.2e}")
            divergence = self.first_divergence
            if divergence is not None:
                lines.append(f"first divergence: node '{divergence.node}' ({divergence.op}): error "
                             f"{divergence.error:.2e} on gold inputs; its inputs arrived with error "
                             f"{divergence.input_error:.2e}")
            elif not self.error <= self.tolerance:
                lines.append("every node is within tolerance on its own: the end-to-end error is float32 "
                             "rounding compounding with depth")
        lines.append(verdict)
        return "\n".join(lines)


def _finite(x: float) -> float | str:
    """JSON has no inf or NaN; they are reported as strings."""
    return x if math.isfinite(x) else str(x)


def _gold_values(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Every node's float64 input arrays, by node name, from one reference run."""
    captured: dict[str, list[np.ndarray]] = {}

    def capture(node: Node, args):
        captured[node.name] = list(args)

    run_reference(graph, inputs, dtype=DType.FLOAT64, hook=capture)
    return captured


def _single(array: np.ndarray, like: np.dtype) -> np.ndarray:
    return array.astype(like) if np.issubdtype(array.dtype, np.floating) else array


def node_tolerance(node: Node) -> float:
    """The bound for the element type the node computes in (float32's for integer results), or the
    looser one of the conv algorithm it was compiled with (Winograd, FFT)."""
    dtype = node.outputs[0].type.dtype
    return tolerance(dtype if dtype in DTYPE_TOLERANCE else DType.FLOAT32, getattr(node.attrs, "algorithm", None))


def layerwise(compiled: CompiledModel, inputs: Mapping[str, np.ndarray]) -> list[NodeCheck]:
    """Each node's kernel on gold inputs, and the compiled chain's own inputs to it, in graph order."""
    graph = compiled.graph
    gold_inputs = _gold_values(graph, inputs)
    chain: dict = {v: inputs[v.name] for v in graph.inputs} | dict(graph.constants)
    checks = []
    for node in graph.nodes:
        gold_args = gold_inputs[node.name]
        gold_out = node.op.run(gold_args, node.attrs)
        ours = compiled.run_node(node.name, [_single(a, v.type.dtype.numpy) for a, v in zip(gold_args, node.inputs)])
        error = max((relative_error(o, g) for o, g in zip(ours, gold_out)), default=0.0)
        arrived = [chain[v] for v in node.inputs]
        input_error = max((relative_error(a, g) for a, g in zip(arrived, gold_args)), default=0.0)
        for value, result in zip(node.outputs, compiled.run_node(node.name, arrived)):
            chain[value] = result
        checks.append(NodeCheck(node.name, node.op.name, error, input_error, node_tolerance(node)))
    return checks


def judge(compiled: CompiledModel, graph: Graph, inputs: Mapping[str, np.ndarray]) -> Validation:
    """`compiled` (built from `graph`) against `graph`'s float64 reference on `inputs`."""
    ours = compiled.run(inputs)
    gold = run_reference(graph, inputs, dtype=DType.FLOAT64)
    # The loosest node in the compiled graph bounds what its outputs can promise.
    bound = max((node_tolerance(n) for n in compiled.graph.nodes), default=tolerance(DType.FLOAT32))
    outputs = {name: (relative_error(ours[name], gold[name]), gold[name].shape) for name in gold}
    error = max((e for e, _ in outputs.values()), default=0.0)
    result = Validation(error <= bound, error, bound, str(compiled.target), compiled.provenance.pipeline,
                        outputs)
    if not result.passed:
        result.layers = layerwise(compiled, inputs)
        result.passed = math.isfinite(error) and result.first_divergence is None
    return result


def validate(graph: Graph, target: str | None, pipeline: str, inputs: Mapping[str, np.ndarray] | None = None,
             seed: int = 0, memory_limit: int | str | None = None) -> Validation:
    """Compile `graph` with `pipeline` for `target` and judge it on `inputs` (random ones by default).

    Both runs must fit `memory_limit` (as `cnncompile.compile` takes it): the compiled model's, and
    the reference's in float64, whose activations take twice float32's bytes."""
    host_limit(memory_limit).check(estimate_memory(graph, compute=DType.FLOAT64),
                                   f"running graph '{graph.name}' on the float64 reference")
    compiled = compile_model(graph, target, pipeline, memory_limit=memory_limit)
    return judge(compiled, graph, dict(inputs) if inputs is not None else random_inputs(graph, seed))
