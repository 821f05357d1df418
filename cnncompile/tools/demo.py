"""`cnncompile demo`: compile the bundled default model and validate it against the gold.

The default model is the zoo's ResNet-50 at 224x224 with deterministic He-initialised
weights. It is compiled with O3 for the default target (CUDA when a GPU is visible,
otherwise this CPU), validated against the float64 reference (end to end, then node by
node where float32 rounding compounds past the tolerance: see tools/validate.py), and
timed beside the float32 NumPy reference and onnxruntime running the same model.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from cnncompile.api import compile as compile_model
from cnncompile.api import describe_default_target
from cnncompile.backends.reference import run_reference
from cnncompile.frontends import zoo
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType
from cnncompile.tools.models import random_inputs
from cnncompile.tools.peers import onnxruntime_session
from cnncompile.tools.validate import judge

DEFAULT_MODEL = "resnet50"
TIMED_RUNS = 5


def _median_ms(run: Callable[[], object], repeats: int = TIMED_RUNS) -> float:
    run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def _onnxruntime_ms(graph: Graph, inputs: dict[str, np.ndarray]) -> float | None:
    """onnxruntime on the same model, if installed."""
    try:
        session = onnxruntime_session(to_onnx(graph))
    except ImportError:
        return None
    return _median_ms(lambda: session.run(None, inputs))


def run_demo(model_name: str = DEFAULT_MODEL, seed: int = 0) -> tuple[str, bool]:
    """Return the printed report and whether the compiled model passed validation."""
    graph = zoo.build(model_name, seed=seed)
    inputs = random_inputs(graph, seed)
    params = sum(array.size for array in graph.constants.values())
    lines = [
        f"cnncompile demo: zoo:{model_name}, " + ", ".join(f"{v.name} {v.type}" for v in graph.inputs)
        + f", {params:,} parameters, random He-initialised weights (seed {seed})",
        f"  {describe_default_target()}",
    ]
    start = time.perf_counter()
    compiled = compile_model(graph, pipeline="O3")
    lines.append(f"  compiled with -p O3 in {time.perf_counter() - start:.1f} s: {len(graph.nodes)} nodes -> "
                 f"{len(compiled.graph.nodes)} after the passes")
    validation = judge(compiled, graph, inputs)
    lines.append("  validation against the float64 reference:")
    lines += [f"    {line}" for line in validation.report().splitlines()]
    latency = [("cnncompile (TVM, O3)", compiled.benchmark(inputs, repeat=TIMED_RUNS).median_ms),
               ("NumPy reference float32", _median_ms(lambda: run_reference(graph, inputs, dtype=DType.FLOAT32)))]
    ort_ms = _onnxruntime_ms(graph, inputs)
    if ort_ms is not None:
        latency.append(("onnxruntime", ort_ms))
    lines.append(f"  latency, median of {TIMED_RUNS} runs, batch 1:")
    lines += [f"    {label:<26} {ms:9.1f} ms" for label, ms in latency]
    lines.append("  verdict: " + ("PASS" if validation.passed else "FAIL"))
    return "\n".join(lines), validation.passed
