"""Reference backend speed on ResNet-50 (batch 1, 224x224, float32) against its peers.

Measures, in one process and alternating the contenders round by round (timing here
drifts 30-50% between minutes), cnncompile's NumPy reference in float32, onnxruntime
(2 threads, all graph optimizations, no spinning threads) and onnx.reference's
ReferenceEvaluator, all on the same model with the same random He-initialised weights.
Prints medians with min/max and the two ratios the foundation issue sets as targets:
  reference / onnxruntime  <= 5
  onnx.reference / reference >= 10
Each contender's end-to-end error against the float64 reference is printed beside its
time; float32 rounding compounds with depth (onnxruntime's own is ~3e-5 on ResNet-50),
so per-node numerics are judged by `cnncompile validate`, not here.
Exit status 1 when a speed target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import onnx
from onnx.reference import ReferenceEvaluator

from cnncompile import DType, load_onnx, run_reference
from cnncompile.numerics import relative_error
from cnncompile.tools.models import light_model_path, random_inputs
from cnncompile.tools.peers import onnxruntime_session
from cnncompile.tools.weights import randomize_weights


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50", help="one of onnx's light models")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per contender")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    model = randomize_weights(onnx.load(str(light_model_path(args.model))), seed=0)
    graph = load_onnx(model)
    inputs = random_inputs(graph, seed=0)
    gold = run_reference(graph, inputs, dtype=DType.FLOAT64)
    session = onnxruntime_session(model, args.threads)
    evaluator = ReferenceEvaluator(model)
    names = [v.name for v in graph.outputs]

    contenders = {
        "cnncompile reference f32": lambda: run_reference(graph, inputs, dtype=DType.FLOAT32),
        "onnxruntime": lambda: dict(zip(names, session.run(None, inputs))),
        "onnx.reference": lambda: dict(zip(names, evaluator.run(None, inputs))),
    }
    errors = {label: max(relative_error(run()[n], gold[n]) for n in names) for label, run in contenders.items()}
    times: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(args.rounds):
        for label, run in contenders.items():
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)

    median = {label: statistics.median(t) for label, t in times.items()}
    print(f"{args.model}, batch 1, float32; {args.rounds} alternating rounds; "
          f"onnxruntime with {args.threads} threads")
    print(f"{'contender':<26} {'median ms':>10} {'min ms':>9} {'max ms':>9} {'error vs f64':>13}")
    for label, samples in times.items():
        print(f"{label:<26} {median[label] * 1e3:10.1f} {min(samples) * 1e3:9.1f} "
              f"{max(samples) * 1e3:9.1f} {errors[label]:13.2e}")
    ours = median["cnncompile reference f32"]
    slower_than_ort = ours / median["onnxruntime"]
    faster_than_onnx_ref = median["onnx.reference"] / ours
    ok_speed = slower_than_ort <= 5 and faster_than_onnx_ref >= 10
    print(f"ratio reference / onnxruntime    = {slower_than_ort:6.2f}  (target <= 5)")
    print(f"ratio onnx.reference / reference = {faster_than_onnx_ref:6.2f}  (target >= 10)")
    print("targets: " + ("met" if ok_speed else "MISSED"))
    return 0 if ok_speed else 1


if __name__ == "__main__":
    sys.exit(main())
