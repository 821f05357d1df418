"""A long `--tune` interrupted and resumed: what the first run measured is kept, not measured again.

The real command in a child process, stopped by SIGINT or SIGTERM while it measures; then the same
command again, to completion. Measurements are counted in the cache file itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnncompile import save_onnx
from cnncompile.backends.tvm.target import host_cpu
from cnncompile.frontends.dsl import Conv, Relu, Sequential
from cnncompile.selection.tuning_cache import Result, TuningCache
from cnncompile.tuning import tuner
from cnncompile.tuning.tuner import tune, workloads

# Two workloads, ~47 candidates, ~15 s of measuring on 2 cores.
MODEL = Sequential(Conv(8, 3, pad=1), Relu(), Conv(16, 3, stride=2, pad=1), Relu())
SHAPE = (1, 4, 17, 17)
STOP_AFTER = 8  # measurements in the cache when the first run is stopped


def _stored(cache: Path) -> dict[tuple[str, str], dict]:
    """Every (entry, candidate) result the cache file holds."""
    try:
        entries = json.loads(cache.read_text())["entries"]
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet
        return {}
    return {(key, candidate): result for key, entry in entries.items()
            for candidate, result in entry["results"].items()}


def _tune_command(model: Path, cache: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "cnncompile.cli", "compile", str(model), "--target", "llvm", "--tune",
            "--tune-budget", "10m", "--tuning-cache", str(cache), "-o", str(out)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_an_interrupted_tune_resumes_without_measuring_again(sig, tmp_path, ctrl_c_raises):
    model = tmp_path / "tiny.onnx"
    save_onnx(MODEL.build(SHAPE), model)
    cache, out = tmp_path / "tuning.json", tmp_path / "out"
    first = subprocess.Popen(_tune_command(model, cache, out), stderr=subprocess.PIPE, text=True)
    while len(_stored(cache)) < STOP_AFTER and first.poll() is None:
        time.sleep(0.05)  # each measurement is in the file as soon as it is made
    assert first.poll() is None, "the first run ended before it was interrupted"
    first.send_signal(sig)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 128 + sig, err
    assert not out.exists()
    kept = _stored(cache)
    assert len(kept) >= STOP_AFTER
    # every candidate of these workloads builds and runs here: a failure would be the interrupted
    # build stored as the candidate's (TVM's FFI turns KeyboardInterrupt into RuntimeError)
    assert all("seconds" in result for result in kept.values()), kept
    assert not all(entry["complete"] for entry in json.loads(cache.read_text())["entries"].values())

    second = subprocess.run(_tune_command(model, cache, out), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    final = _stored(cache)
    assert {k: final[k] for k in kept} == kept  # the first run's measurements, untouched
    (measured,) = map(int, re.findall(r"\((\d+) measurements, 0 failed\)", second.stderr))
    assert measured == len(final) - len(kept)  # only what the first run lacked was measured
    assert all(entry["complete"] for entry in json.loads(cache.read_text())["entries"].values())
    assert (out / "manifest.json").is_file()


def test_ctrl_c_inside_a_build_is_not_stored_as_the_candidates_failure(tmp_path, monkeypatch, ctrl_c_raises):
    """SIGINT in a Python callback of TVM's compiler comes out as a bare RuntimeError, which `measure`
    records as 'build failed'; the tuner raises the interrupt instead and stores nothing for it."""
    calls: list = []

    def measure(spec, candidate, target, device, build_lock=None):
        calls.append(candidate)
        if len(calls) < 3:
            return Result(1e-3 * len(calls), device.name), None
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises here, as it would in a callback of TVM's
        except KeyboardInterrupt:
            return Result(None, device.name, "build failed: RuntimeError"), None  # what TVM's FFI leaves of it
        raise AssertionError("SIGINT was not delivered")

    monkeypatch.setattr(tuner, "measure", measure)
    graph = MODEL.build(SHAPE)
    cache = TuningCache(tmp_path / "tuning.json")
    with pytest.raises(KeyboardInterrupt):
        tune(graph, host_cpu(), cache, budget_seconds=60)
    stored = cache.lookup(workloads(graph)[0].spec, host_cpu())
    assert set(stored.results) == set(calls[:2]) and stored.failed == {} and not stored.complete
