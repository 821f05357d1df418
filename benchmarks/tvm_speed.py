"""cnncompile's TVM backend (LLVM, this CPU) against onnxruntime and its own O0, batch 1, float32.

For each zoo model (random He-initialised weights, the zoo's published input size unless
--size is given): compile with -p O3 and -p O0, export the O3 graph to ONNX for
onnxruntime (2 intra-op threads, all graph optimizations, no spinning threads), then time
the contenders alternately in one process, round by round (timing here drifts 30-50%
between minutes). Prints medians with min/max, compile time, the ratio O3 / onnxruntime,
and each contender's end-to-end error against the float64 reference (float32 rounding
compounds with depth; per-layer numerics are `cnncompile validate`'s job).

Recorded (AMD EPYC, AVX2 only, 2 cores shared with other jobs, so absolute times are
~3x slower than on an idle machine; the ratios come from alternating rounds), medians of 7:

    model          O3 compile   O3 ms    O0 ms   onnxruntime ms   O3 / onnxruntime
    resnet18          6.9 s      53.0     54.9        52.4             1.01x
    resnet50          4.6 s     150.5    171.0       116.0             1.30x
    mobilenet_v2      3.2 s      18.4     19.2        11.0             1.67x
    vgg16            13.5 s     280.9    288.8       262.6             1.07x
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import onnxruntime as ort

import cnncompile
from cnncompile.numerics import relative_error
from cnncompile.tools.models import load_model, random_inputs


def onnxruntime_session(graph: cnncompile.Graph, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    model = cnncompile.to_onnx(graph).SerializeToString()
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1e3


def bench_model(name: str, size: int | None, rounds: int, threads: int) -> None:
    shapes = {"input": (1, 3, size, size)} if size else None
    graph = load_model(f"zoo:{name}", shapes)
    inputs = random_inputs(graph)
    gold = cnncompile.run_reference(graph, inputs, dtype="float64")
    start = time.perf_counter()
    o3 = cnncompile.compile(graph, target="llvm", pipeline="O3")
    compile_seconds = time.perf_counter() - start
    o0 = cnncompile.compile(graph, target="llvm", pipeline="O0")
    session = onnxruntime_session(graph, threads)
    feeds = {v.name: inputs[v.name] for v in graph.inputs}
    names = [v.name for v in graph.outputs]
    contenders = {
        "cnncompile O3": lambda: o3.run(inputs),
        "cnncompile O0": lambda: o0.run(inputs),
        "onnxruntime": lambda: dict(zip(names, session.run(None, feeds))),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    errors = {k: max(relative_error(run()[n], gold[n]) for n in names) for k, run in contenders.items()}
    for _ in range(rounds):
        for label, run in contenders.items():
            times[label].append(timed(run))
    shape = "x".join(map(str, graph.inputs[0].type.shape))
    print(f"\n{name} ({shape}), O3 compile {compile_seconds:.1f} s")
    for label, samples in times.items():
        print(f"  {label:<14} {statistics.median(samples):8.2f} ms  (min {min(samples):.2f}, max {max(samples):.2f})"
              f"  error {errors[label]:.1e}")
    ratio = statistics.median(times["cnncompile O3"]) / statistics.median(times["onnxruntime"])
    print(f"  O3 / onnxruntime = {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", default=["resnet18", "resnet50", "mobilenet_v2", "vgg16"])
    parser.add_argument("--size", type=int, help="input height and width (default: the zoo's)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per contender")
    parser.add_argument("--threads", type=int, default=2, help="threads for onnxruntime and TVM")
    args = parser.parse_args()
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))
    for name in args.models:
        bench_model(name, args.size, args.rounds, args.threads)


if __name__ == "__main__":
    main()
