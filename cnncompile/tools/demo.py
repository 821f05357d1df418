"""`cnncompile demo`: import a real CNN, run it, and check it against the float64 gold.

Until the TVM backend lands, the contenders are the float32 reference and onnxruntime.
End-to-end errors are printed for both (float32 rounding compounds with depth, so they
are reported side by side, not judged); the verdict is the layer-wise check, which holds
every node to the float32 tolerance on its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import onnx

from cnncompile.backends.reference import run_reference
from cnncompile.frontends.onnx import load_onnx
from cnncompile.numerics import TOLERANCE, relative_error
from cnncompile.tools.layerwise import layerwise_errors
from cnncompile.tools.models import light_model_path, random_inputs
from cnncompile.tools.weights import randomize_weights

DEFAULT_MODEL = "resnet50"


@dataclass(frozen=True)
class DemoRow:
    contender: str
    seconds: float
    error: float | None


def _timed(run):
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def run_demo(model_name: str = DEFAULT_MODEL, seed: int = 0) -> tuple[str, bool]:
    """Return the printed report and whether every layer met the float32 tolerance."""
    proto = randomize_weights(onnx.load(str(light_model_path(model_name))), seed)
    graph, import_s = _timed(lambda: load_onnx(proto))
    inputs = random_inputs(graph, seed)
    gold, gold_s = _timed(lambda: run_reference(graph, inputs, dtype="float64"))
    rows = [DemoRow("reference float64 (gold)", gold_s, None)]
    ours, ours_s = _timed(lambda: run_reference(graph, inputs, dtype="float32"))
    rows.append(DemoRow("reference float32", ours_s, max(relative_error(ours[k], gold[k]) for k in gold)))
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        theirs, ort_s = _timed(lambda: session.run(None, inputs))
        rows.append(DemoRow("onnxruntime float32", ort_s,
                            max(relative_error(t, gold[n]) for n, t in zip(names, theirs))))
    flops = sum(n.op.flops([v.type for v in n.inputs], [v.type for v in n.outputs], n.attrs) for n in graph.nodes)
    params = sum(int(np.prod(a.shape)) for a in graph.constants.values())
    shapes = ", ".join(f"{v.name} {v.type}" for v in graph.inputs)
    lines = [
        f"cnncompile demo: {model_name} (onnx's light model, random He-initialised weights, seed {seed})",
        f"  input {shapes}; {len(graph.nodes)} nodes, {params:,} parameters, {flops / 1e9:.2f} GFLOPs; "
        f"imported in {import_s:.2f} s",
        "  error = max|out - ref| / max|ref| against the float64 reference",
    ]
    for row in rows:
        error = "gold" if row.error is None else f"end-to-end error {row.error:.2e}"
        lines.append(f"  {row.contender:<26} {row.seconds * 1e3:9.1f} ms  {error}")
    layers = layerwise_errors(graph, inputs)
    worst = max(layers, key=lambda layer: layer.error)
    failed = [layer for layer in layers if not layer.passed]
    lines.append(f"  layer-wise float32 check: {len(layers) - len(failed)}/{len(layers)} nodes within "
                 f"{TOLERANCE['float32']:g} (worst: {worst.node} {worst.op} {worst.error:.2e})")
    lines += [f"    FAIL {layer.node} ({layer.op}): error {layer.error:.2e}" for layer in failed]
    lines.append("  verdict: " + ("PASS" if not failed else "FAIL"))
    return "\n".join(lines), not failed
