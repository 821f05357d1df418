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

With --baseline-tree PATH (a git worktree of an older commit with the same package layout,
e.g. `git worktree add /work/baseline COMMIT`), a contender "baseline O3" joins: the same
model, with the same random weights (the graph is built once here and saved as an ONNX file
that both trees compile, the current build in this process too), compiled with -p O3 by
the code in PATH. Two versions of cnncompile cannot share a process, so the baseline is
compiled, run and timed in a child process (this interpreter, PYTHONPATH=PATH) that the
rounds drive over a pipe: each round the child, in its turn, gets the same pause, one
untimed run and BACK_TO_BACK timed runs (timed inside the child; only the times cross the
pipe), and while it runs the parent waits without timing, so no two pools spin at once.
Its output is checked against the same float64 reference. Per model this prints the
baseline's and the current build's medians and current / baseline, and at the end the
geomean of current / baseline over the models run, per batch size: the check that a change
kept the speed (e.g. issue 16: batch 1 geomean within 3%, no model slower beyond noise;
with --tuning-cache, tuned / O3 is printed too).

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
import math
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import cnncompile
from cnncompile.numerics import relative_error
from cnncompile.tools.inspect import summarize
from cnncompile.tools.models import random_inputs
from cnncompile.tools.peers import onnxruntime_session, openvino_model
from cnncompile.tuning.budget import parse_duration
from cnncompile.tuning.tuner import TuningOptions

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "vgg16", "densenet121"]
# Longer than onnxruntime's threads spin after a run (~40 ms measured), so none is busy when the next starts.
PAUSE_SECONDS = 0.1
BACK_TO_BACK = 3
BASELINE = "baseline O3"

# The baseline's side, run as `python -c` with PYTHONPATH=tree: it uses only cnncompile.compile
# and CompiledModel.run, so that any tree with the package's layout can serve. Replies go to a
# copy of the original stdout; fd 1 itself goes to stderr, so nothing printed while compiling
# or running can break the line protocol. Commands: "round WARM COUNT" (WARM untimed runs,
# then COUNT timed ones; replies the COUNT times in ms), "quit".
BASELINE_CHILD = r"""
import os, pickle, sys, time
replies = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
onnx_path, inputs_path, outputs_path, tree = sys.argv[1:5]
import cnncompile
where = os.path.realpath(cnncompile.__file__)
if not where.startswith(os.path.realpath(tree) + os.sep):
    sys.exit(f"baseline child: cnncompile imported from {where}, not from {tree}")
with open(inputs_path, "rb") as handle:
    inputs = pickle.load(handle)
compile_model = cnncompile.compile  # imports TVM: not part of the compile time
start = time.perf_counter()
model = compile_model(onnx_path, target="llvm", pipeline="O3")
compile_seconds = time.perf_counter() - start
outputs = model.run(inputs)
with open(outputs_path, "wb") as handle:
    pickle.dump({name: outputs[name] for name in outputs}, handle)
print("ready", compile_seconds, file=replies)
for line in sys.stdin:
    words = line.split()
    if words[0] == "quit":
        break
    warm, count = int(words[1]), int(words[2])
    for _ in range(warm):
        model.run(inputs)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        model.run(inputs)
        times.append((time.perf_counter() - start) * 1e3)
    print(" ".join(map(repr, times)), file=replies)
"""


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1e3


def in_process(run: Callable[[], object]) -> Callable[[int, int], list[float]]:
    """A contender's turn in a round: `warm` untimed runs, then the times of `count` runs."""
    def turn(warm: int, count: int) -> list[float]:
        for _ in range(warm):
            run()
        return [timed(run) for _ in range(count)]
    return turn


def git_commit(tree: str | os.PathLike) -> str:
    """The tree's commit, abbreviated, marked dirty when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", os.fspath(tree), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "-uno") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


class BaselineChild:
    """The baseline tree's O3 build of one ONNX file, compiled and timed in a child process."""

    def __init__(self, tree: str, onnx_path: Path, inputs: dict[str, np.ndarray], workdir: Path):
        inputs_path, outputs_path = workdir / "inputs.pkl", workdir / "baseline_outputs.pkl"
        with open(inputs_path, "wb") as handle:
            pickle.dump(inputs, handle)
        env = dict(os.environ, PYTHONPATH=tree)  # TVM_NUM_THREADS and the spin count as set in main()
        self.process = subprocess.Popen(
            [sys.executable, "-c", BASELINE_CHILD, str(onnx_path), str(inputs_path), str(outputs_path), tree],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=workdir, env=env)
        words = self._reply().split()
        if words[:1] != ["ready"]:
            raise RuntimeError(f"baseline child: unexpected reply {' '.join(words)!r}")
        self.compile_seconds = float(words[1])
        with open(outputs_path, "rb") as handle:
            self.outputs: dict[str, np.ndarray] = pickle.load(handle)

    def _reply(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"baseline child exited (status {self.process.wait()}); see its stderr above")
        return line

    def turn(self, warm: int, count: int) -> list[float]:
        self.process.stdin.write(f"round {warm} {count}\n")
        self.process.stdin.flush()
        return [float(word) for word in self._reply().split()]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def sgemm_peak_gflops(size: int = 2048, repeats: int = 7) -> float:
    """The best of a few float32 size x size products: what this machine's BLAS reaches."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    a @ b
    best = min(timed(lambda: a @ b) for _ in range(repeats)) / 1e3
    return 2 * size ** 3 / best / 1e9


def bench_model(name: str, batch: int, size: int | None, rounds: int, threads: int, tuning: TuningOptions | None,
                peak: float, spinning: bool, baseline_tree: str | None = None,
                precision: str | None = None) -> dict[str, float]:
    """Times the contenders on one model and batch size; returns each contender's median in ms. With
    `precision`, cnncompile in that precision and OpenVINO as it ships and in f32 join them."""
    zoo_model = cnncompile.zoo.model(name)
    height, width = (size, size) if size else zoo_model.input_shape[2:]
    graph = zoo_model.build((batch, 3, height, width))
    inputs = random_inputs(graph)
    gold = cnncompile.run_reference(graph, inputs, dtype=cnncompile.DType.FLOAT64)
    flops = summarize(graph).totals.flops
    names = [v.name for v in graph.outputs]
    with tempfile.TemporaryDirectory(prefix="cpu_speed_") as workdir:
        source: cnncompile.Graph | str = graph
        child = None
        try:
            if baseline_tree is not None:  # both trees compile the same ONNX file
                onnx_path = Path(workdir) / f"{name}_b{batch}.onnx"
                cnncompile.save_onnx(graph, onnx_path)
                source = str(onnx_path)
                child = BaselineChild(baseline_tree, onnx_path, inputs, Path(workdir))
            compile_model = cnncompile.compile  # imports the TVM backend: not part of the compile time
            start = time.perf_counter()
            contenders = {"cnncompile O3": compile_model(source, target="llvm", pipeline="O3")}
            compile_seconds = time.perf_counter() - start
            if tuning is not None:
                start = time.perf_counter()
                contenders["cnncompile tuned"] = compile_model(source, target="llvm", pipeline="O3", tuning=tuning)
                print(f"{name} batch {batch}: tuned compile {time.perf_counter() - start:.1f} s", flush=True)
            if precision is not None:
                contenders[f"cnncompile {precision}"] = compile_model(source, target="llvm", pipeline="O3",
                                                                      precision=precision)
            session = onnxruntime_session(cnncompile.to_onnx(graph), threads, spinning)
            feeds = {v.name: inputs[v.name] for v in graph.inputs}
            runs = {label: (lambda model=model: model.run(inputs)) for label, model in contenders.items()}
            runs["onnxruntime"] = lambda: dict(zip(names, session.run(None, feeds)))
            if precision is not None:
                for label, hint in (("OpenVINO shipped", None), ("OpenVINO f32", "f32")):
                    request = openvino_model(cnncompile.to_onnx(graph), threads, hint).create_infer_request()
                    runs[label] = lambda request=request: {n: request.infer(feeds)[n] for n in names}
            errors = {label: max(relative_error(run()[n], gold[n]) for n in names) for label, run in runs.items()}
            turns = {label: in_process(run) for label, run in runs.items()}
            if child is not None:
                errors = {BASELINE: max(relative_error(child.outputs[n], gold[n]) for n in names), **errors}
                turns = {BASELINE: child.turn, **turns}
            times: dict[str, list[float]] = {label: [] for label in turns}
            for _ in range(rounds):
                for label, turn in turns.items():
                    if spinning:  # the other contenders' pools (the child's too) go to sleep
                        time.sleep(PAUSE_SECONDS)
                    times[label].extend(turn(1, BACK_TO_BACK) if spinning else turn(0, 1))
        finally:
            if child is not None:
                child.close()
    median = {label: statistics.median(samples) for label, samples in times.items()}
    shape = "x".join(map(str, graph.inputs[0].type.shape))
    print(f"\n{name} {shape} ({flops / 1e9:.2f} GFLOP): O3 compile {compile_seconds:.1f} s"
          + (f", baseline O3 compile {child.compile_seconds:.1f} s (child process)" if child is not None else ""))
    for label, samples in times.items():
        gflops = flops / (median[label] / 1e3) / 1e9
        print(f"  {label:<16} {median[label]:9.2f} ms  (min {min(samples):.2f}, max {max(samples):.2f})  "
              f"{gflops:6.1f} GFLOP/s = {gflops / peak:4.0%} of sgemm peak  error {errors[label]:.1e}")
    for label in contenders:
        print(f"  {label} / onnxruntime = {median[label] / median['onnxruntime']:.2f}x")
    if precision is not None:
        for label in (f"cnncompile {precision}", "cnncompile O3"):
            print(f"  {label} / OpenVINO shipped = {median[label] / median['OpenVINO shipped']:.2f}x, "
                  f"/ OpenVINO f32 = {median[label] / median['OpenVINO f32']:.2f}x")
    if "cnncompile tuned" in median:
        print(f"  cnncompile tuned / cnncompile O3 = {median['cnncompile tuned'] / median['cnncompile O3']:.3f}x")
    if child is not None:
        for label in contenders:
            print(f"  {label} / {BASELINE} = {median[label] / median[BASELINE]:.3f}x  "
                  f"({median[label]:.2f} / {median[BASELINE]:.2f} ms)")
    return median


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def print_baseline_summary(results: dict[tuple[str, int], dict[str, float]], baseline_tree: str) -> None:
    """Per model and batch: baseline ms, current ms, current / baseline; then the geomeans per batch."""
    current_tree = Path(cnncompile.__file__).resolve().parent.parent
    print(f"\ncnncompile O3 ({current_tree} at {git_commit(current_tree)}) against {BASELINE} "
          f"({baseline_tree} at {git_commit(baseline_tree)}), medians:")
    tuned = any("cnncompile tuned" in median for median in results.values())
    print(f"    {'model':<14} batch  baseline ms  current ms  current / baseline"
          + ("  tuned ms  tuned / baseline  tuned / current" if tuned else ""))
    for (name, batch), median in results.items():
        base, current = median[BASELINE], median["cnncompile O3"]
        line = f"    {name:<14} {batch:5}  {base:11.2f}  {current:10.2f}  {current / base:17.3f}x"
        if "cnncompile tuned" in median:
            t = median["cnncompile tuned"]
            line += f"  {t:8.2f}  {t / base:15.3f}x  {t / current:14.3f}x"
        print(line)
    for batch in sorted({batch for _, batch in results}):
        ratios = [m["cnncompile O3"] / m[BASELINE] for (_, b), m in results.items() if b == batch]
        print(f"geomean current / baseline at batch {batch} over {len(ratios)} model(s): {geomean(ratios):.3f}x")
        tuned_ratios = [m["cnncompile tuned"] / m["cnncompile O3"] for (_, b), m in results.items()
                        if b == batch and "cnncompile tuned" in m]
        if tuned_ratios:
            print(f"geomean tuned / current O3 at batch {batch} over {len(tuned_ratios)} model(s): "
                  f"{geomean(tuned_ratios):.3f}x")


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
    parser.add_argument("--baseline-tree", metavar="PATH",
                        help="also time 'baseline O3': the same model compiled by the cnncompile in PATH (a git "
                        "worktree of an older commit), in a child process; print current / baseline")
    parser.add_argument("--precision", choices=["fp16", "bf16", "auto"],
                        help="also time cnncompile in this precision, and OpenVINO as it ships (bf16 on a CPU with "
                        "AVX512_BF16 or AMX) and in f32")
    args = parser.parse_args()
    if args.tune and not args.tuning_cache:
        parser.error("--tune needs --tuning-cache FILE")
    baseline_tree = None
    if args.baseline_tree:
        baseline_tree = os.path.realpath(args.baseline_tree)
        if not Path(baseline_tree, "cnncompile", "__init__.py").is_file():
            parser.error(f"--baseline-tree {args.baseline_tree}: no cnncompile/__init__.py there")
        if Path(cnncompile.__file__).resolve().is_relative_to(baseline_tree):
            parser.error(f"--baseline-tree {args.baseline_tree} is the tree this script imported cnncompile from")
    tuning = None
    if args.tuning_cache:
        tuning = TuningOptions(cache=args.tuning_cache, measure=bool(args.tune),
                               **({"budget_seconds": parse_duration(args.tune)} if args.tune else {}))
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))
    if args.no_spinning:  # read when TVM's pool starts, at the first run (the baseline child inherits both)
        os.environ["TVM_THREAD_POOL_SPIN_COUNT"] = "0"
    peak = sgemm_peak_gflops()
    print(f"sgemm peak (numpy BLAS, float32 2048^3): {peak:.1f} GFLOP/s; medians of {args.rounds} alternating rounds; "
          + ("no spinning threads" if args.no_spinning else
             f"each runtime's own spinning, {BACK_TO_BACK} back-to-back runs after a {PAUSE_SECONDS} s pause"))
    results = {}
    for name in args.models:
        for batch in args.batch or [1, 8]:
            results[name, batch] = bench_model(name, batch, args.size, args.rounds, args.threads, tuning, peak,
                                               not args.no_spinning, baseline_tree, args.precision)
    if baseline_tree is not None:
        print_baseline_summary(results, baseline_tree)


if __name__ == "__main__":
    main()
