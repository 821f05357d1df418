"""Soak: a compiled model run many times in one process keeps a constant resident memory.

Compiles MODEL (default zoo:resnet18, -p O3, LLVM on this CPU), saves the artifact and loads it
back (what a deployment runs), then calls it --runs times on a few fixed random inputs, reading
the resident set size (/proc/self/statm) every --every runs. Prints the samples, the median RSS
of the first and the last quarter of them, and the growth between the two; exits 1 when that
growth passes --max-growth-mb. The first --warmup runs are not sampled: the allocator, TVM's
workspace pool and the thread pool grow to their working size there.

A leak of one output per run (ResNet-18: 4 KB) over 10,000 runs is 40 MB; the first-quarter and
last-quarter medians are each taken over many samples, so a one-off page or two does not count.

    .venv/bin/python benchmarks/soak.py                          # 10,000 runs of ResNet-18
    .venv/bin/python benchmarks/soak.py --model tiny.onnx --runs 500 --every 25
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

import cnncompile

MB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@dataclass(frozen=True)
class Sample:
    runs: int
    rss: int
    seconds: float


def soak(model: cnncompile.CompiledModel, runs: int, every: int, warmup: int, seed: int = 0) -> list[Sample]:
    """RSS after every `every` runs, counted from the end of the warm-up."""
    rng = np.random.default_rng(seed)
    inputs = [{s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in model.inputs} for _ in range(4)]
    for i in range(warmup):
        model.run(inputs[i % len(inputs)])
    samples = [Sample(0, resident_bytes(), 0.0)]
    start = time.perf_counter()
    for i in range(1, runs + 1):
        model.run(inputs[i % len(inputs)])
        if i % every == 0:
            samples.append(Sample(i, resident_bytes(), time.perf_counter() - start))
    return samples


def growth(samples: list[Sample]) -> tuple[float, float]:
    """Median RSS of the first and of the last quarter of the samples."""
    quarter = max(1, len(samples) // 4)
    return (statistics.median(s.rss for s in samples[:quarter]),
            statistics.median(s.rss for s in samples[-quarter:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:resnet18", help="an ONNX file or zoo:NAME (default zoo:resnet18)")
    parser.add_argument("-p", "--pipeline", default="O3")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=500, help="runs between RSS samples")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--max-growth-mb", type=float, default=8.0,
                        help="fail when the last quarter's median RSS passes the first quarter's by more")
    args = parser.parse_args()

    compiled = cnncompile.compile(args.model, target="llvm", pipeline=args.pipeline)
    with tempfile.TemporaryDirectory(prefix="cnncompile-soak-") as root:
        model = cnncompile.load(compiled.save(os.path.join(root, "artifact")))
        del compiled
        samples = soak(model, args.runs, args.every, args.warmup)

    print(f"{args.model} -p {args.pipeline}, {args.runs} runs after {args.warmup} warm-up runs")
    print(f"{'runs':>7} {'RSS MB':>9} {'vs start':>9} {'ms/run':>7}")
    previous = samples[0]
    for sample in samples:
        per_run = 1e3 * (sample.seconds - previous.seconds) / max(1, sample.runs - previous.runs)
        print(f"{sample.runs:>7} {sample.rss / MB:>9.2f} {(sample.rss - samples[0].rss) / MB:>+9.2f} "
              f"{per_run if sample.runs else float('nan'):>7.2f}")
        previous = sample
    first, last = growth(samples)
    grown = (last - first) / MB
    verdict = "ok" if grown <= args.max_growth_mb else f"FAIL: more than {args.max_growth_mb} MB"
    print(f"median RSS, first quarter {first / MB:.2f} MB, last quarter {last / MB:.2f} MB: "
          f"growth {grown:+.2f} MB over {args.runs} runs ({verdict})")
    return 0 if grown <= args.max_growth_mb else 1


if __name__ == "__main__":
    sys.exit(main())
