"""`cnncompile compare`: one model through several pipelines, side by side.

For each pipeline: the graph it leaves (nodes, fused nodes, parameters, FLOPs, peak
activation memory from the liveness plan), what it cost (compile time), what it buys
(latency on the chosen backend: the float32 reference by default, or each optimized graph
compiled by TVM for a target) and what it risks (error against the float64 reference of
the imported graph). Latency is timed by rounds that alternate the pipelines, so machine
noise (30-50% between minutes here) hits them all alike; each reports its median with
the min and max.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cnncompile.backends.reference import run_reference
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType
from cnncompile.ir.liveness import plan_memory
from cnncompile.numerics import relative_error
from cnncompile.passes.manager import NumericCheck, PipelineRun, run_pipeline
from cnncompile.passes.pipelines import Pipeline
from cnncompile.tools.models import random_inputs


@dataclass(frozen=True)
class Latency:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(statistics.median(seconds), min(seconds), max(seconds))


@dataclass
class PipelineResult:
    pipeline: str
    run: PipelineRun
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

    def as_dict(self) -> dict:
        latency = self.latency
        return {
            "pipeline": self.pipeline, "nodes": self.nodes, "fused": self.fused, "parameters": self.parameters,
            "flops": self.flops, "peak_activation_bytes": self.peak_bytes, "compile_seconds": self.run.seconds,
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
    backend: str = "the reference backend (float32)"

    def as_dict(self) -> dict:
        return {"model": self.model, "inputs": {v.name: list(v.type.shape) for v in self.graph.inputs},
                "runs": self.runs, "backend": self.backend, "pipelines": [r.as_dict() for r in self.results]}


Runner = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def reference_runner(graph: Graph) -> Runner:
    """The default backend: the NumPy reference in float32."""
    return lambda inputs: run_reference(graph, inputs, dtype=DType.FLOAT32)


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


def compare(model: str, graph: Graph, pipelines: Sequence[Pipeline], *, runs: int = 5, seed: int = 0,
            verify: bool = False, dump_after: Collection[str] = (),
            dump: Callable[[str, str, Graph], None] | None = None, check_each_pass: bool = False,
            backend: Callable[[Graph], Runner] = reference_runner,
            backend_name: str = "the reference backend (float32)") -> Comparison:
    """Optimize a copy of `graph` with each pipeline, then measure them all on the same random inputs.

    `backend` turns each optimized graph into the function that is timed and judged (the
    TVM backend compiles it: building is not counted in the "compile" column, which times
    the passes).
    """
    inputs = random_inputs(graph, seed)
    gold = run_reference(graph, inputs, dtype=DType.FLOAT64)
    results = []
    runners = []
    for pipeline in pipelines:
        steps = pipeline.steps()
        run = run_pipeline(graph.copy(), steps, verify=verify, dump_after=set(dump_after) & {s.name for s in steps},
                           dump=None if dump is None else (lambda name, g, p=pipeline.name: dump(p, name, g)),
                           check=reference_check(inputs) if check_each_pass else None)
        runners.append(backend(run.graph))
        error = _error(runners[-1](inputs), gold)
        results.append(PipelineResult(pipeline.name, run, error=error, **graph_stats(run.graph)))
    for _ in range(runs):
        for result, runner in zip(results, runners):
            start = time.perf_counter()
            runner(inputs)
            result.times.append(time.perf_counter() - start)
    for result in results:
        result.latency = Latency.of(result.times) if result.times else None
    return Comparison(model, graph, results, runs, backend_name)


def _human(count: float, unit: str) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.2f}{suffix}{unit}"
    return f"{count:g}{unit}"


def format_comparison(comparison: Comparison) -> str:
    header = ("pipeline", "nodes", "fused", "params", "FLOPs", "peak act.", "compile", "latency (median [min-max])",
              "error")
    rows = [header]
    for r in comparison.results:
        latency = "-" if r.latency is None else \
            f"{r.latency.median * 1e3:.1f} ms [{r.latency.low * 1e3:.1f}-{r.latency.high * 1e3:.1f}]"
        rows.append((r.pipeline, str(r.nodes), str(r.fused), _human(r.parameters, ""), _human(r.flops, ""),
                     _human(r.peak_bytes, "B"), f"{r.run.seconds * 1e3:.1f} ms", latency, f"{r.error:.1e}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    shapes = ", ".join(f"{v.name} {v.type}" for v in comparison.graph.inputs)
    lines.insert(0, f"{comparison.model}: {shapes}; latency on {comparison.backend} over "
                    f"{comparison.runs} runs; error against the float64 reference")
    return "\n".join(lines)
