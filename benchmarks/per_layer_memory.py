"""Peak memory of `validate --per-layer` against a plain `validate`: issue 20's bound (at most 2x).

    .venv/bin/python benchmarks/per_layer_memory.py [zoo:vgg16] [--input-shape input=1x3x224x224]

Each run is a child process (`cnncompile validate MODEL [--per-layer]`, the same inputs), and its
peak resident set is the kernel's maximum RSS of that child (getrusage of the children, taken
after each one ends, as the difference of the running maximum). Prints both peaks, the ratio,
and each run's verdict and wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(sys.executable).with_name("cnncompile")


def peak_of(arguments: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MiB, seconds, exit status) of one child running the CLI with `arguments`."""
    start = time.perf_counter()
    status = subprocess.run([str(CLI), *arguments], stdout=subprocess.DEVNULL, env=dict(os.environ)).returncode
    seconds = time.perf_counter() - start
    # ru_maxrss of RUSAGE_CHILDREN is the largest child's so far: run the smaller one first
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, seconds, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="zoo:vgg16")
    parser.add_argument("--input-shape", action="append", default=[])
    args = parser.parse_args()
    common = ["validate", args.model, *(f"--input-shape={s}" for s in args.input_shape)]
    plain, plain_s, plain_status = peak_of(common)
    layered, layered_s, layered_status = peak_of([*common, "--per-layer"])
    print(f"{args.model}: plain validate peak {plain:.0f} MiB ({plain_s:.1f} s, exit {plain_status}); "
          f"--per-layer peak {layered:.0f} MiB ({layered_s:.1f} s, exit {layered_status}); "
          f"ratio {layered / plain:.2f}x (issue 20: at most 2x)")
    if layered <= plain:
        print("(the per-layer child's peak did not exceed the plain one's: the ratio is an upper bound of 1.00x)")


if __name__ == "__main__":
    main()
