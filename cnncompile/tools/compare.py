"""`cnncompile compare`: one model through several pipelines, in several precisions, side by side.

For each build (a pipeline in a precision): the graph it leaves (nodes, fused nodes, parameters,
FLOPs, peak activation memory from the liveness plan), what it cost (compile time: the passes),
what it buys (latency of the graph compiled by TVM for a target, the default; or, when asked, of
the float32 NumPy reference running it) and what it risks (error against the float64 reference
of the imported graph). Latency is timed by rounds that alternate the builds, so machine noise
(30-50% between minutes here) hits them all alike; each reports its median with the min and max.
"""

from __future__ import annotations

import dataclasses
import enum
import statistics
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from cnncompile.api import compile as compile_model
from cnncompile.backends.reference import run_reference
from cnncompile.backends.tvm.target import host_cpu, parse_target
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType
from cnncompile.ir.liveness import plan_memory
from cnncompile.numerics import relative_error
from cnncompile.passes.manager import NumericCheck, PipelineRun, run_pipeline
from cnncompile.passes.pipelines import Pipeline
from cnncompile.passes.precision import Precision
from cnncompile.selection.pipelines import for_target, resolve_precision
from cnncompile.tools.models import random_inputs


class Runnable(Protocol):
    """What a build becomes to be timed and judged: a CompiledModel, or the reference running a graph."""

    def run(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]: ...


@dataclass(frozen=True)
class ReferenceModel:
    """A graph on the NumPy reference in float32: what `--time-reference` times."""

    graph: Graph

    def run(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        return run_reference(self.graph, inputs, dtype=DType.FLOAT32)


class BackendKind(enum.Enum):
    TVM = "tvm"
    REFERENCE = "reference"


@dataclass(frozen=True)
class Backend:
    """Where builds are timed: compiled by TVM for `target` (the default target when None), or the reference."""

    kind: BackendKind = BackendKind.TVM
    target: str | None = None
    memory_limit: int | str | None = None

    @property
    def name(self) -> str:
        if self.kind is BackendKind.REFERENCE:
            return "the reference backend (float32)"
        return f"TVM ({parse_target(self.target)})"

    def resolve(self, precision: Precision | str) -> Precision:
        """`auto` as this backend's target has it (the reference emulates this CPU's)."""
        return resolve_precision(precision, host_cpu() if self.kind is BackendKind.REFERENCE
                                 else parse_target(self.target))

    def pipeline(self, pipeline: Pipeline, precision: Precision) -> Pipeline:
        """The passes a build runs: a compile's for the target (its algorithm and layout passes, converting
        to a reduced precision before them); on the reference, the pipeline's own, then converting."""
        if self.kind is BackendKind.TVM:
            return for_target(pipeline, parse_target(self.target), precision)
        if precision is Precision.FP32:
            return pipeline
        return for_target(dataclasses.replace(pipeline, target_passes=()), host_cpu(), precision)

    def build(self, graph: Graph) -> Runnable:
        """The graph arrives optimized: a compile with O0 only lowers and builds it."""
        if self.kind is BackendKind.REFERENCE:
            return ReferenceModel(graph)
        return compile_model(graph, self.target, "O0", memory_limit=self.memory_limit)


@dataclass(frozen=True)
class Latency:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(statistics.median(seconds), min(seconds), max(seconds))


def build_label(pipeline: str, precision: Precision) -> str:
    """The pipeline, with the precision when it is not fp32: 'O3', 'O3 bf16'."""
    return pipeline if precision is Precision.FP32 else f"{pipeline} {precision.value}"


@dataclass
class PipelineResult:
    """One build's row: `pipeline` in `precision`."""

    pipeline: str
    precision: Precision
    run: PipelineRun
    model: Runnable = field(repr=False)  # what is timed (a CompiledModel on TVM)
    nodes: int
    fused: int
    parameters: int
    flops: int
    peak_bytes: int
    error: float
    latency: Latency | None = None
    times: list[float] = field(default_factory=list, repr=False)

    @property
    def graph(self) -> Graph:
        return self.run.graph

    @property
    def label(self) -> str:
        return build_label(self.pipeline, self.precision)

    def as_dict(self) -> dict:
        latency = self.latency
        return {
            "pipeline": self.pipeline, "precision": self.precision.value, "nodes": self.nodes, "fused": self.fused,
            "parameters": self.parameters, "flops": self.flops, "peak_activation_bytes": self.peak_bytes,
            "compile_seconds": self.run.seconds,
            "latency_seconds": None if latency is None else {"median": latency.median, "min": latency.low,
                                                             "max": latency.high},
            "error": self.error,
            "passes": [{"name": r.name, "seconds": r.seconds, "nodes_before": r.nodes_before,
                        "nodes_after": r.nodes_after, "fired": dict(r.log.fired), "check_change": r.error,
                        "declined": [str(x) for x in r.log.rejections]} for r in self.run.records],
        }


@dataclass
class Comparison:
    model: str
    graph: Graph  # as imported: the "before" of every pipeline
    results: list[PipelineResult]
    runs: int
    backend: str
    inputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # what every build ran on

    def as_dict(self) -> dict:
        return {"model": self.model, "inputs": {v.name: list(v.type.shape) for v in self.graph.inputs},
                "runs": self.runs, "backend": self.backend, "pipelines": [r.as_dict() for r in self.results]}


def reference_check(inputs: Mapping[str, np.ndarray]) -> NumericCheck:
    """--check-each-pass on the NumPy reference: each pass's float64 outputs on `inputs`."""
    return NumericCheck(lambda graph: list(run_reference(graph, inputs, dtype=DType.FLOAT64).values()))


def graph_stats(graph: Graph) -> dict[str, int]:
    return {
        "nodes": len(graph.nodes),
        "fused": sum(1 for n in graph.nodes if n.op.domain),
        "parameters": sum(int(a.size) for a in graph.constants.values()),
        "flops": sum(n.op.flops([v.type for v in n.inputs], [v.type for v in n.outputs], n.attrs) for n in graph.nodes),
        "peak_bytes": plan_memory(graph).peak_bytes,
    }


def _error(outputs: Mapping[str, np.ndarray], gold: Mapping[str, np.ndarray]) -> float:
    return max((relative_error(a, b) for a, b in zip(outputs.values(), gold.values(), strict=True)), default=0.0)


def compare(model: str, graph: Graph, pipelines: Sequence[Pipeline], *,
            precisions: Sequence[Precision | str] = (Precision.FP32,), runs: int = 5, seed: int = 0,
            verify: bool = False, dump_after: Collection[str] = (),
            dump: Callable[[str, str, Graph], None] | None = None, check_each_pass: bool = False,
            backend: Backend = Backend()) -> Comparison:
    """Optimize a copy of `graph` with each pipeline in each precision (pipelines outer), then measure them
    all on the same random inputs.

    `backend` turns each optimized graph into what is timed and judged (TVM compiles it by default:
    building is not counted in the "compile" column, which times the passes). A precision that resolves
    to one already listed (`auto`) is measured once.
    """
    inputs = random_inputs(graph, seed)
    gold = run_reference(graph, inputs, dtype=DType.FLOAT64)
    resolved = list(dict.fromkeys(backend.resolve(p) for p in precisions))
    results = []
    for pipeline in pipelines:
        for precision in resolved:
            steps = backend.pipeline(pipeline, precision).steps()
            label = build_label(pipeline.name, precision)
            run = run_pipeline(graph.copy(), steps, verify=verify,
                               dump_after=set(dump_after) & {s.name for s in steps},
                               dump=None if dump is None else (lambda name, g, p=label: dump(p, name, g)),
                               check=reference_check(inputs) if check_each_pass else None)
            built = backend.build(run.graph)
            results.append(PipelineResult(pipeline.name, precision, run, built, error=_error(built.run(inputs), gold),
                                          **graph_stats(run.graph)))
    for _ in range(runs):
        for result in results:
            start = time.perf_counter()
            result.model.run(inputs)
            result.times.append(time.perf_counter() - start)
    for result in results:
        result.latency = Latency.of(result.times) if result.times else None
    return Comparison(model, graph, results, runs, backend.name, inputs)


def _human(count: float, unit: str) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.2f}{suffix}{unit}"
    return f"{count:g}{unit}"


def format_comparison(comparison: Comparison) -> str:
    header = ("pipeline", "precision", "nodes", "fused", "params", "FLOPs", "peak act.", "compile",
              "latency (median [min-max])", "error")
    rows = [header]
    for r in comparison.results:
        latency = "-" if r.latency is None else \
            f"{r.latency.median * 1e3:.3g} ms [{r.latency.low * 1e3:.3g}-{r.latency.high * 1e3:.3g}]"
        rows.append((r.pipeline, r.precision.value, str(r.nodes), str(r.fused), _human(r.parameters, ""),
                     _human(r.flops, ""), _human(r.peak_bytes, "B"), f"{r.run.seconds * 1e3:.1f} ms", latency,
                     f"{r.error:.1e}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    shapes = ", ".join(f"{v.name} {v.type}" for v in comparison.graph.inputs)
    lines.insert(0, f"{comparison.model}: {shapes}; latency on {comparison.backend} over "
                    f"{comparison.runs} runs; error against the float64 reference")
    return "\n".join(lines)
