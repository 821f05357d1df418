"""The tuning cache file: keyed lookups, a corrupted file reported and kept, concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec
from cnncompile.backends.tvm.target import Device, TargetSpec, host_cpu
from cnncompile.errors import CnnCompileError
from cnncompile.ir.types import NHWC, DType, TensorType, nchwc
from cnncompile.selection.candidates import Candidate
from cnncompile.selection.tuning_cache import Result, TuningCache, default_cache_path

DIRECT = Candidate(ConvAlgorithm.DIRECT)
BLOCKED = Candidate(ConvAlgorithm.DIRECT, nchwc(8), (2, 1, 4))
WINOGRAD = Candidate(ConvAlgorithm.WINOGRAD_F2X3)


def spec(channels: int = 16, size: int = 14) -> ConvSpec:
    return ConvSpec.of(TensorType((1, channels, size, size), DType.FLOAT32),
                       TensorType((channels, channels, 3, 3), DType.FLOAT32), pads=(1, 1, 1, 1))


def test_store_then_lookup_gives_the_fastest_and_every_time(tmp_path):
    cache = TuningCache(tmp_path / "tuning.json")
    cache.store(spec(), host_cpu(), {DIRECT: Result(3e-4), BLOCKED: Result(1e-4),
                                     WINOGRAD: Result(None, error="build failed: no")})
    measured = TuningCache(tmp_path / "tuning.json").lookup(spec(), host_cpu())
    assert measured.best == BLOCKED
    assert measured.results == {DIRECT: 3e-4, BLOCKED: 1e-4}
    assert measured.failed == {WINOGRAD: "build failed: no"}
    assert measured.complete


def test_another_workload_target_thread_count_or_version_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("TVM_NUM_THREADS", "2")
    cache = TuningCache(tmp_path / "tuning.json")
    cache.store(spec(), host_cpu(), {DIRECT: Result(1e-4)})
    assert cache.lookup(spec(), host_cpu()).best == DIRECT
    assert cache.lookup(spec(channels=8), host_cpu()) is None
    assert cache.lookup(spec(), TargetSpec(Device.LLVM, "skylake")) is None
    monkeypatch.setenv("TVM_NUM_THREADS", "16")
    assert cache.lookup(spec(), host_cpu()) is None
    monkeypatch.setenv("TVM_NUM_THREADS", "2")
    monkeypatch.setattr("cnncompile.selection.tuning_cache.__version__", "99.0")
    assert cache.lookup(spec(), host_cpu()) is None


def test_results_merge_into_an_existing_entry(tmp_path):
    cache = TuningCache(tmp_path / "tuning.json")
    cache.store(spec(), host_cpu(), {DIRECT: Result(3e-4)}, complete=False)
    assert not cache.lookup(spec(), host_cpu()).complete
    cache.store(spec(), host_cpu(), {Candidate(ConvAlgorithm.DIRECT, NHWC): Result(2e-4)})
    measured = cache.lookup(spec(), host_cpu())
    assert set(measured.results) == {DIRECT, Candidate(ConvAlgorithm.DIRECT, NHWC)} and measured.complete


def test_default_location_honours_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "cnncompile" / "tuning.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "cnncompile" / "tuning.json"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-shape"])
def test_a_corrupted_file_is_reported_once_ignored_and_moved_aside(tmp_path, damage):
    path = tmp_path / "tuning.json"
    TuningCache(path).store(spec(), host_cpu(), {DIRECT: Result(1e-4)})
    text = path.read_text()
    broken = {"truncate": text[: len(text) // 2], "garbage": "\x00\x01 not json",
              "wrong-shape": json.dumps({"format": 1, "entries": []})}[damage]
    path.write_text(broken)
    warnings: list[str] = []
    cache = TuningCache(path, warn=warnings.append)
    assert cache.lookup(spec(), host_cpu()) is None
    assert cache.lookup(spec(8), host_cpu()) is None
    assert len(warnings) == 1 and str(path) in warnings[0] and "ignoring it" in warnings[0]
    assert "\n" not in warnings[0]

    cache.store(spec(8), host_cpu(), {WINOGRAD: Result(2e-4)})
    assert (tmp_path / "tuning.json.corrupt").read_text() == broken  # kept, never destroyed
    assert len(warnings) == 2 and "moved it to" in warnings[1]
    assert cache.lookup(spec(8), host_cpu()).best == WINOGRAD

    path.write_text(broken)  # broken again: the first evidence stays, the second lands beside it
    cache.store(spec(8), host_cpu(), {WINOGRAD: Result(2e-4)})
    assert (tmp_path / "tuning.json.corrupt").read_text() == (tmp_path / "tuning.json.corrupt.1").read_text()


def test_an_unwritable_cache_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CnnCompileError, match="cannot write the tuning cache .*--tuning-cache"):
        TuningCache(tmp_path / "file" / "tuning.json").store(spec(), host_cpu(), {DIRECT: Result(1e-4)})


def test_an_unreadable_entry_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "tuning.json"
    cache = TuningCache(path)
    cache.store(spec(), host_cpu(), {DIRECT: Result(1e-4)})
    data = json.loads(path.read_text())
    (entry,) = data["entries"].values()
    entry["results"]["tensorcore/NCHW"] = {"seconds": 1e-9}
    path.write_text(json.dumps(data))
    assert TuningCache(path).lookup(spec(), host_cpu()).best == DIRECT


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cnncompile.backends.tvm.target import host_cpu
    from cnncompile.selection.tuning_cache import TuningCache
    from selection.test_tuning_cache import store_many

    path, first, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    cache, target = TuningCache(path), host_cpu()
    (go.parent / "ready").touch()
    while not go.exists():
        time.sleep(0.005)
    store_many(cache, target, first)
""")


def workload(channels: int) -> ConvSpec:
    return ConvSpec.of(TensorType((1, channels, 8, 8), DType.FLOAT32), TensorType((channels, channels, 3, 3), DType.FLOAT32))


def store_many(cache: TuningCache, target: TargetSpec, first: int) -> None:
    for channels in range(first, first + 20):
        cache.store(workload(channels), target, {DIRECT: Result(channels * 1e-6)})


def test_two_processes_writing_at_once_both_land(tmp_path):
    """This process and another store 20 workloads each into one file, starting at the same moment."""
    path, go = tmp_path / "tuning.json", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    other = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "101", str(go)], env=env)
    deadline = time.monotonic() + 120
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline and other.poll() is None:
        time.sleep(0.01)
    go.touch()
    store_many(TuningCache(path), host_cpu(), 1)
    assert other.wait(timeout=120) == 0
    cache = TuningCache(path)
    for channels in [*range(1, 21), *range(101, 121)]:
        assert cache.lookup(workload(channels), host_cpu()).results == {DIRECT: pytest.approx(channels * 1e-6)}
    assert not list(tmp_path.glob(".tuning.json.*.tmp"))
