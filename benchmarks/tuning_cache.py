"""What the tuning cache saves: a tuning compile against a compile that reuses its measurements.

For each zoo model (batch 1, its published input size, random weights): compile -p O3 for
LLVM on this CPU with `--tune` into a fresh cache (measuring every candidate of every
distinct conv workload within the budget), then compile again from that cache, and once
with the cost model alone for reference. Both compiles run in this process after a warm-up
compile, so Python's and TVM's start-up is in neither. Prints the seconds, the ratio
(issue 7's goal: the compile from the cache at least 10x faster than the tuning compile),
the measurements taken, and whether the two compiles built the same kernels (structural
hash of the lowered module).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import tvm_ffi

import cnncompile
from cnncompile.backends.tvm.module import lower_graph
from cnncompile.backends.tvm.target import host_cpu
from cnncompile.frontends.load import load_model
from cnncompile.tuning.budget import parse_duration
from cnncompile.tuning.tuner import TuningOptions

MODELS = ["resnet18", "resnet50", "mobilenet_v2"]


def timed_compile(graph, tuning: TuningOptions | None) -> tuple[float, cnncompile.CompiledModel]:
    start = time.perf_counter()
    model = cnncompile.compile(graph, target="llvm", pipeline="O3", tuning=tuning)
    return time.perf_counter() - start, model


def kernels_hash(model) -> int:
    return tvm_ffi.structural_hash(lower_graph(model.graph, host_cpu()).module)


def bench_model(name: str, budget: float) -> None:
    graph = load_model(f"zoo:{name}")
    with tempfile.TemporaryDirectory(prefix="cnncompile-cache-bench-") as directory:
        cache = os.path.join(directory, "tuning.json")
        plain, _ = timed_compile(graph, None)
        tuning, tuned = timed_compile(graph, TuningOptions(cache=cache, budget_seconds=budget))
        with open(cache) as file:
            entries = json.load(file)["entries"]
        measurements = sum(len(entry["results"]) for entry in entries.values())
        cached, reused = timed_compile(graph, TuningOptions(cache=cache, measure=False))
        same = kernels_hash(tuned) == kernels_hash(reused)
    print(f"{name}: cost model {plain:.1f} s | tuning compile {tuning:.1f} s ({len(entries)} workloads, "
          f"{measurements} measurements) | from the cache {cached:.1f} s = {tuning / cached:.1f}x faster | "
          f"same kernels: {'yes' if same else 'NO'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--tune-budget", default="10m", help="tuning budget per model (default 10m)")
    args = parser.parse_args()
    budget = parse_duration(args.tune_budget)
    cnncompile.compile(load_model("zoo:lenet5"), target="llvm", pipeline="O3")  # start-up outside the timings
    for name in args.models:
        bench_model(name, budget)


if __name__ == "__main__":
    main()
