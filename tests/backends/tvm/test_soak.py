"""benchmarks/soak.py, bounded: 3,000 runs of a tiny compiled model in one process, RSS flat.

The same script as the 10,000-run ResNet-18 soak, on a model small enough to run in seconds; a
leak of 1 KB per run (an output array, a workspace, a VM frame) passes the 2 MB bound by half.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cnncompile import save_onnx
from cnncompile.frontends.dsl import Conv, Relu, Sequential

SOAK = Path(__file__).resolve().parents[3] / "benchmarks" / "soak.py"


def test_three_thousand_runs_keep_resident_memory_flat(tmp_path):
    model = tmp_path / "tiny.onnx"
    save_onnx(Sequential(Conv(8, 3, pad=1), Relu(), Conv(8, 3, pad=1)).build((1, 4, 12, 12)), model)
    done = subprocess.run([sys.executable, str(SOAK), "--model", str(model), "-p", "O1", "--runs", "3000",
                           "--every", "100", "--max-growth-mb", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (verdict,) = [line for line in done.stdout.splitlines() if line.startswith("median RSS")]
    assert "growth" in verdict and verdict.endswith("(ok)")
