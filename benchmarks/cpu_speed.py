"""cnncompile on this CPU against onnxruntime, batch 1 and 8, float32: the targets of issue 7.

For each zoo model (random He-initialised weights, BN statistics calibrated; the zoo's
published input size unless --size is given) and each batch size: compile with -p O3 for
LLVM on this CPU (algorithms and layouts picked by the cost model), and, when
--tuning-cache names a cache filled by `cnncompile compile --tune`, once more with the
measured choices; export the graph to ONNX for onnxruntime (2 intra-op threads, all graph
optimizations); then time the contenders alternately in one process, round by round (timing
here drifts 30-50% between minutes), and print medians with
min/max, the ratio to onnxruntime (goal: at or below 1.0 with the cost model alone,
clearly below after tuning), each contender's end-to-end error against the float64
reference, and the achieved GFLOP/s against this machine's sgemm peak (numpy's BLAS on a
large square float32 product, measured in the same run with the same thread count).
GFLOP/s count the direct convolution's operations, so Winograd layers can pass the peak.

Each runtime's pool keeps its threads as it ships: they spin between kernels and between
back-to-back runs, and go to sleep once idle (cnncompile's after ~1 ms, onnxruntime's after
~40 ms). So each round gives every contender, in turn, PAUSE_SECONDS for the other's threads
to go to sleep, one untimed run, and BACK_TO_BACK timed runs, as a server under steady load
would see. With --no-spinning, neither pool spins at all, and each round times one run per
contender (sessions 3 and 4 measured so).

Session 7, on an AMD EPYC (znver3, AVX2: 8 lanes, 16 registers; 2 vCPUs), each runtime's
own spinning; batch 1 with 10 rounds, cost model alone (run 1), then again with --tune 3m
per model into a fresh cache (run 2, after tuning re-times each workload's finalists);
batch 8 with 4 rounds; sgemm peak 137-152 GFLOP/s:

    model          batch  run 1: O3 / ort  | run 2: O3 ms  tuned ms  ort ms  O3 / ort  tuned / ort
    resnet18         1        0.79x        |        21.06    20.05    27.57    0.76x     0.73x
    resnet50         1        0.91x        |        52.55    51.30    59.99    0.88x     0.86x
    mobilenet_v2     1        0.84x        |         6.51     6.71     7.64    0.85x     0.88x
    vgg16            1        0.54x        |       106.27   111.62   214.07    0.50x     0.52x
    densenet121      1        0.88x        |        34.34    34.57    40.64    0.84x     0.85x
    resnet18         8        0.62x  (154.4 / 250.5 ms)
    resnet50         8        0.85x  (449.0 / 525.5 ms)
    mobilenet_v2     8        0.88x  (53.1 / 60.4 ms)
    vgg16            8        0.48x  (740.2 / 1546.8 ms)
    densenet121      8        0.83x  (327.3 / 396.4 ms)

Recorded on an Intel Xeon (Emerald Rapids, AVX-512, 2 vCPUs under KVM), cost model alone.
Session 6, after register tiles over 1 KiB moved from TVM's workspace allocator to the
stack (build.py); still a noisy VM, batch 1 ratios moving +-10% between runs. Own spinning,
batch 1 (10 rounds, then 20 for three models) and batch 8 (4 rounds); --no-spinning batch 1:

    model          batch  O3 ms   onnxruntime ms  O3 / ort  (20 rounds)  | no spinning O3 / ort
    resnet18         1     11.49      12.91        0.89x                  |    1.03x
    resnet50         1     39.03      37.93        1.03x      1.08x       |    0.97x
    mobilenet_v2     1      4.96       4.25        1.17x      0.98x       |    1.05x
    vgg16            1     72.81     113.22        0.64x                  |    0.58x
    densenet121      1     26.83      25.79        1.04x      0.94x       |    0.98x
    resnet18         8     62.20      88.64        0.70x
    resnet50         8    178.08     202.02        0.88x
    mobilenet_v2     8     25.26      27.71        0.91x
    vgg16            8    470.78     754.66        0.62x
    densenet121      8    171.23     190.74        0.90x

Session 5, after Winograd by output blocks and the runtime's short spin; this VM was noisy
that day (medians drift 10-30% between runs, sgemm peak 225-344 GFLOP/s), so read the
ratios, not the milliseconds. Each runtime's own spinning (batch 1: 10 rounds, batch 8: 4,
3 back-to-back runs each), then --no-spinning (batch 1, 10 rounds):

    model          batch  O3 ms   onnxruntime ms  O3 / ort   | no spinning: O3 ms  ort ms  O3 / ort
    resnet18         1     11.97      13.59        0.88x     |              12.95   17.26   0.75x
    resnet50         1     41.42      42.22        0.98x     |              31.37   30.01   1.05x
    mobilenet_v2     1      6.05       6.01        1.01x     |               5.41    4.78   1.13x
    vgg16            1     80.83     136.30        0.59x     |              66.32  106.41   0.62x
    densenet121      1     29.47      30.56        0.96x     |              27.25   26.23   1.04x
    resnet18         8     64.31     100.85        0.64x
    resnet50         8    196.11     202.22        0.97x
    mobilenet_v2     8     29.70      27.72        1.07x
    vgg16            8    620.43     846.81        0.73x
    densenet121      8    193.74     187.17        1.04x

Session 4 (same machine type, quieter; no spinning; batch 1 with 10 rounds and --tune 3m
per model, batch 8 with 6 rounds and the cost model alone):

    model          batch  O3 ms   tuned ms  onnxruntime ms  O3 / ort  tuned / ort  O3 GFLOP/s
    resnet18         1     11.86    11.22       12.58         0.94x      0.89x        307
    resnet50         1     29.74    29.40       28.57         1.04x      1.03x        276
    mobilenet_v2     1      5.55     5.78        5.78         0.96x      1.00x        113
    vgg16            1     89.54    96.69      161.03         0.56x      0.60x        346
    densenet121      1     27.63    27.47       26.89         1.03x      1.02x        207
    resnet18         8     91.68                102.02        0.90x                   317
    resnet50         8    263.20                245.23        1.07x                   250
    mobilenet_v2     8     42.41                 44.24        0.96x                   118
    vgg16            8    523.28                858.93        0.61x                   473
    densenet121      8    238.26                234.44        1.02x                   192

Earlier, on an AMD EPYC (znver4, AVX-512 hidden: 8 lanes, 16 registers), with Winograd on
NCHWc and flat register tiles (session 3; batch 1, 6 rounds, sgemm peak 160): O3 /
onnxruntime resnet18 20.1 / 25.7 ms (0.78x), mobilenet_v2 6.5 / 6.2 (1.05x), resnet50
50.9 / 55.7 (0.91x), densenet121 44.5 / 47.5 (0.94x), vgg16 104 / 211 (0.49x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import cnncompile
from cnncompile.numerics import relative_error
from cnncompile.tools.inspect import summarize
from cnncompile.frontends.load import load_model
from cnncompile.tools.models import random_inputs
from cnncompile.tools.peers import onnxruntime_session
from cnncompile.tuning.budget import parse_duration
from cnncompile.tuning.tuner import TuningOptions

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "vgg16", "densenet121"]
# Longer than onnxruntime's threads spin after a run (~40 ms measured), so none is busy when the next starts.
PAUSE_SECONDS = 0.1
BACK_TO_BACK = 3


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1e3


def sgemm_peak_gflops(size: int = 2048, repeats: int = 7) -> float:
    """The best of a few float32 size x size products: what this machine's BLAS reaches."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    a @ b
    best = min(timed(lambda: a @ b) for _ in range(repeats)) / 1e3
    return 2 * size ** 3 / best / 1e9


def bench_model(name: str, batch: int, size: int | None, rounds: int, threads: int, tuning: TuningOptions | None,
                peak: float, spinning: bool) -> None:
    graph = load_model(f"zoo:{name}")
    height, width = (size, size) if size else graph.inputs[0].type.shape[2:]
    graph = load_model(f"zoo:{name}", {graph.inputs[0].name: (batch, 3, height, width)})
    inputs = random_inputs(graph)
    gold = cnncompile.run_reference(graph, inputs, dtype=cnncompile.DType.FLOAT64)
    flops = summarize(graph).totals.flops
    start = time.perf_counter()
    contenders = {"cnncompile O3": cnncompile.compile(graph, target="llvm", pipeline="O3")}
    compile_seconds = time.perf_counter() - start
    if tuning is not None:
        start = time.perf_counter()
        contenders["cnncompile tuned"] = cnncompile.compile(graph, target="llvm", pipeline="O3", tuning=tuning)
        print(f"{name} batch {batch}: tuned compile {time.perf_counter() - start:.1f} s", flush=True)
    session = onnxruntime_session(cnncompile.to_onnx(graph), threads, spinning)
    feeds = {v.name: inputs[v.name] for v in graph.inputs}
    names = [v.name for v in graph.outputs]
    runs = {label: (lambda model=model: model.run(inputs)) for label, model in contenders.items()}
    runs["onnxruntime"] = lambda: dict(zip(names, session.run(None, feeds)))
    errors = {label: max(relative_error(run()[n], gold[n]) for n in names) for label, run in runs.items()}
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            if spinning:
                time.sleep(PAUSE_SECONDS)
                run()
            times[label].extend(timed(run) for _ in range(BACK_TO_BACK if spinning else 1))
    median = {label: statistics.median(samples) for label, samples in times.items()}
    shape = "x".join(map(str, graph.inputs[0].type.shape))
    print(f"\n{name} {shape} ({flops / 1e9:.2f} GFLOP): O3 compile {compile_seconds:.1f} s")
    for label, samples in times.items():
        gflops = flops / (median[label] / 1e3) / 1e9
        print(f"  {label:<16} {median[label]:9.2f} ms  (min {min(samples):.2f}, max {max(samples):.2f})  "
              f"{gflops:6.1f} GFLOP/s = {gflops / peak:4.0%} of sgemm peak  error {errors[label]:.1e}")
    for label in contenders:
        print(f"  {label} / onnxruntime = {median[label] / median['onnxruntime']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (default: 1 and 8)")
    parser.add_argument("--size", type=int, help="input height and width (default: the zoo's)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per contender")
    parser.add_argument("--threads", type=int, default=2, help="threads for onnxruntime, TVM and BLAS")
    parser.add_argument("--tuning-cache", metavar="FILE", help="also time the choices measured into FILE")
    parser.add_argument("--no-spinning", action="store_true",
                        help="no runtime's threads spin between kernels; one run per contender and round")
    parser.add_argument("--tune", metavar="BUDGET", help="first measure what FILE lacks, within BUDGET per model "
                        "and batch (e.g. 5m), as `cnncompile compile --tune` does")
    args = parser.parse_args()
    if args.tune and not args.tuning_cache:
        parser.error("--tune needs --tuning-cache FILE")
    tuning = None
    if args.tuning_cache:
        tuning = TuningOptions(cache=args.tuning_cache, measure=bool(args.tune),
                               **({"budget_seconds": parse_duration(args.tune)} if args.tune else {}))
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))
    if args.no_spinning:  # read when TVM's pool starts, at the first run
        os.environ["TVM_THREAD_POOL_SPIN_COUNT"] = "0"
    peak = sgemm_peak_gflops()
    print(f"sgemm peak (numpy BLAS, float32 2048^3): {peak:.1f} GFLOP/s; medians of {args.rounds} alternating rounds; "
          + ("no spinning threads" if args.no_spinning else
             f"each runtime's own spinning, {BACK_TO_BACK} back-to-back runs after a {PAUSE_SECONDS} s pause"))
    for name in args.models:
        for batch in args.batch or [1, 8]:
            bench_model(name, batch, args.size, args.rounds, args.threads, tuning, peak, not args.no_spinning)


if __name__ == "__main__":
    main()
