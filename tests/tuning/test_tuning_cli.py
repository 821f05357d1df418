"""`cnncompile compile --tune ...`: durations, flag errors as one line, a tuned compile then one from the cache."""

from __future__ import annotations

import json

import pytest

from cnncompile import save_onnx
from cnncompile.backends.tvm.target import host_cpu
from cnncompile.cli import main
from cnncompile.errors import CnnCompileError
from cnncompile.frontends.dsl import Conv, Relu, Sequential
from cnncompile.selection.tuning_cache import TuningCache
from cnncompile.tuning.budget import parse_duration
from cnncompile.tuning.tuner import workloads


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400),
                                               ("2.5m", 150), (" 45S ", 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "10x", "m", "1m1", "-5s", "0s", "1h 30"])
def test_a_bad_duration_says_how_to_write_one(text):
    with pytest.raises(CnnCompileError, match="--tune-budget"):
        parse_duration(text)


@pytest.mark.parametrize(("flags", "message"), [
    (["--tune", "--tune-budget", "ten minutes"], "is not a duration"),
    (["--tune", "--rpc", "localhost", "--key", "k"], "is not HOST:PORT"),
    (["--tune", "--rpc", "localhost:9190"], "--rpc needs --key"),
    (["--tune", "--key", "k"], "give the tracker with --rpc"),
    (["--tune-budget", "10m"], "only apply with --tune"),
    (["--tuning-cache", "/nonexistent/tuning.json"], "add --tune to measure into it"),
])
def test_bad_tuning_flags_exit_2_with_one_line(flags, message, tmp_path, capsys):
    code = main(["compile", "zoo:resnet18", "--target", "llvm", "-o", str(tmp_path / "out"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_tune_then_compile_from_the_cache(tmp_path, capsys):
    graph = Sequential(Conv(8, 3, stride=2, pad=1), Relu()).build((1, 4, 9, 9))
    model = tmp_path / "tiny.onnx"
    save_onnx(graph, model)
    cache = tmp_path / "tuning.json"
    assert main(["compile", str(model), "--target", "llvm", "--tune", "--tune-budget", "2m",
                 "--tuning-cache", str(cache), "-o", str(tmp_path / "tuned"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "tuned 1 conv workload(s)" in err and json.loads(out)["artifact"]
    (workload,) = workloads(graph)
    assert TuningCache(cache).lookup(workload.spec, host_cpu()).complete

    assert main(["compile", str(model), "--target", "llvm", "--tuning-cache", str(cache),
                 "-o", str(tmp_path / "cached"), "--explain"]) == 0
    out, err = capsys.readouterr()
    assert "tuned" not in err and "measured" in out


def test_a_truncated_cache_is_one_warning_line_and_the_cost_model_decides(tmp_path, capsys):
    graph = Sequential(Conv(8, 3, stride=2, pad=1), Relu()).build((1, 4, 9, 9))
    model = tmp_path / "tiny.onnx"
    save_onnx(graph, model)
    cache = tmp_path / "tuning.json"
    cache.write_text('{"format": 1, "entries": {"[{\\"batch\\": 1, ')
    assert main(["compile", str(model), "--target", "llvm", "--tuning-cache", str(cache),
                 "-o", str(tmp_path / "out"), "--explain"]) == 0
    out, err = capsys.readouterr()
    (warning,) = [line for line in err.splitlines() if line.strip()]
    assert warning.startswith("cnncompile: warning: tuning cache") and str(cache) in warning and "ignoring it" in warning
    assert "cost model" in out and cache.exists()
