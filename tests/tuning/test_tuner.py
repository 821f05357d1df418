"""The measuring loop: a tuned compile, then a compile from the cache; budgets; interruptions; failures."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tvm_ffi

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec
from cnncompile.api import compile as compile_model
from cnncompile.backends.reference import run_reference
from cnncompile.backends.tvm.module import lower_graph
from cnncompile.backends.tvm.target import host_cpu
from cnncompile.frontends.dsl import Conv, Relu, Sequential
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.fused import FusedConv
from cnncompile.selection.candidates import Candidate, candidates
from cnncompile.selection.select import ChoiceSource, ranked
from cnncompile.selection.tuning_cache import Result, TuningCache
from cnncompile.tuning import tuner
from cnncompile.tuning.measure import LocalDevice, measure
from cnncompile.tuning.tuner import CONFIRM_ROUNDS, FINALISTS, TuneReport, TuningOptions, tune, workloads

# Three distinct small workloads (a strided 3x3, a 1x1, a wider strided 3x3), ~40 candidates in all.
MODEL = Sequential(Conv(8, 3, stride=2, pad=1), Relu(), Conv(8, 1), Relu(), Conv(16, 3, stride=2, pad=1))
SHAPE = (1, 4, 17, 17)


class Recorder:
    """Tuning progress that keeps what it is told."""

    def __init__(self):
        self.statuses, self.report = [], None

    def __call__(self, status):
        self.statuses.append(status)

    def finish(self, report: TuneReport):
        self.report = report


def test_workloads_are_distinct_and_heaviest_first():
    graph = Sequential(Conv(8, 1), Conv(8, 1), Conv(16, 3, pad=1), Conv(16, 1)).build((1, 8, 6, 6))
    found = workloads(graph)
    # 8->16 3x3: 41472 MACs; 16->16 1x1: 9216; the two 8->8 1x1: 2 x 2304
    assert [(w.spec.out_channels, w.spec.kernel, len(w.nodes)) for w in found] == [
        (16, (3, 3), 1), (16, (1, 1), 1), (8, (1, 1), 2)]
    assert [w.macs for w in found] == sorted((w.macs for w in found), reverse=True)


def test_a_second_compile_with_the_cache_is_10x_faster_and_builds_the_same_kernels(tmp_path, monkeypatch):
    graph = MODEL.build(SHAPE)
    first = Recorder()
    start = time.perf_counter()
    tuned = compile_model(graph, "llvm", tuning=TuningOptions(tmp_path / "tuning.json", progress=first))
    tuning_seconds = time.perf_counter() - start
    assert len(first.report.tuned) == 3 and first.report.measured >= 20

    def no_measuring(*args, **kwargs):
        raise AssertionError("a compile with a complete cache measured a candidate")

    monkeypatch.setattr(tuner, "measure", no_measuring)
    second = Recorder()
    start = time.perf_counter()
    cached = compile_model(graph, "llvm", tuning=TuningOptions(tmp_path / "tuning.json", progress=second))
    cached_seconds = time.perf_counter() - start
    print(f"\ntuning compile {tuning_seconds:.2f} s ({first.report.measured} measurements), "
          f"compile from the cache {cached_seconds:.2f} s: {tuning_seconds / cached_seconds:.1f}x")

    assert second.report.measured == 0 and len(second.report.cached) == 3
    assert cached_seconds * 10 <= tuning_seconds
    assert [(c.node, c.chosen, c.source) for c in tuned.choices] == [(c.node, c.chosen, c.source)
                                                                      for c in cached.choices]
    assert {c.source for c in cached.choices} == {ChoiceSource.MEASURED}
    cache = TuningCache(tmp_path / "tuning.json")
    built = {n.name: n.attrs.layout for n in cached.graph.nodes if n.op is FusedConv}

    def fastest_in_its_layout(choice):
        results = cache.lookup(choice.spec, host_cpu()).results
        return min((c for c in results if c.layout == built[choice.node]), key=results.get)

    # each conv computes by the fastest measurement in the layout assign-layouts gave it
    assert [c.chosen for c in cached.choices] == [fastest_in_its_layout(c) for c in cached.choices]
    kernels = [tvm_ffi.structural_hash(lower_graph(m.graph, host_cpu()).module) for m in (tuned, cached)]
    assert kernels[0] == kernels[1]
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    (name,) = [v.name for v in graph.inputs]
    (reference,) = run_reference(graph, {name: x}, dtype=DType.FLOAT64).values()
    (out,) = cached.run({name: x}).values()
    assert np.max(np.abs(out - reference)) / max(np.max(np.abs(reference)), 1e-6) < 1e-4


def fake_measure(seconds: float, calls: list):
    """A measurement that takes `seconds` and times the candidate by its position in the list."""
    def run(spec, candidate, target, device, build_lock=None):
        calls.append((spec, candidate))
        time.sleep(seconds)
        return Result(1e-3 / (1 + len(calls)), device.name), None
    return run


def test_the_budget_is_respected_and_the_rest_reported(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(tuner, "measure", fake_measure(0.1, calls))
    graph = MODEL.build(SHAPE)
    cache = TuningCache(tmp_path / "tuning.json")
    start = time.monotonic()
    report = tune(graph, host_cpu(), cache, budget_seconds=1.0)
    elapsed = time.monotonic() - start
    assert elapsed <= 1.0 + 0.1 + 0.05  # stops when less than one measurement's time is left
    assert 5 <= report.measured <= 10 and report.measured == len(calls)
    heaviest = workloads(graph)[0].spec
    assert {spec for spec, _ in calls} == {heaviest} and report.partial == [heaviest]
    assert len(report.untuned) == 2 and "budget ran out" in report.summary()
    stored = cache.lookup(heaviest, host_cpu())
    assert not stored.complete and len(stored.results) == report.measured


def test_an_interrupted_run_keeps_its_work_and_the_next_resumes(tmp_path, monkeypatch):
    calls: list = []
    measured = fake_measure(0.0, calls)

    def interrupted(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        return measured(*args, **kwargs)

    monkeypatch.setattr(tuner, "measure", interrupted)
    graph = MODEL.build(SHAPE)
    cache = TuningCache(tmp_path / "tuning.json")
    with pytest.raises(KeyboardInterrupt):
        tune(graph, host_cpu(), cache, budget_seconds=60)
    heaviest = workloads(graph)[0].spec
    assert len(cache.lookup(heaviest, host_cpu()).results) == 3

    monkeypatch.setattr(tuner, "measure", measured)
    report = tune(graph, host_cpu(), cache, budget_seconds=60)
    planned = sum(len(candidates(w.spec, host_cpu())) for w in workloads(graph))
    assert len(calls) == planned and len(set(calls)) == planned  # nothing measured twice
    assert len(report.tuned) == 3 and all(cache.lookup(w.spec, host_cpu()).complete for w in workloads(graph))


def test_a_candidate_that_does_not_build_is_recorded_with_its_reason():
    spec = ConvSpec.of(TensorType((1, 16, 6, 6), DType.FLOAT32), TensorType((16, 16, 3, 3), DType.FLOAT32),
                       pads=(1, 1, 1, 1))
    device = LocalDevice(host_cpu())
    good, built = measure(spec, Candidate(ConvAlgorithm.DIRECT), host_cpu(), device)
    bad, nothing = measure(spec, Candidate(ConvAlgorithm.DIRECT, None, (3, 1, 1)), host_cpu(), device)
    assert good.ok and 0 < good.seconds < 0.1 and 0 < device.time(built) < 0.1
    assert not bad.ok and bad.error.startswith("build failed:") and "tile" in bad.error and nothing is None


def test_the_finalists_are_timed_again_so_one_disturbed_measurement_does_not_decide(tmp_path, monkeypatch):
    graph = Sequential(Conv(8, 3, pad=1)).build((1, 4, 9, 9))
    (workload,) = workloads(graph)
    offered = candidates(workload.spec, host_cpu())
    pick = ranked(offered, workload.spec, host_cpu())[0].candidate
    # Each candidate takes 2-3 ms, the cost model's pick 1 ms, but its first measurement was disturbed: 50 ms.
    steady = {c: 2e-3 + i * 1e-5 for i, c in enumerate(offered)} | {pick: 1e-3}
    first = steady | {pick: 50e-3}
    timed: list[Candidate] = []

    class SteadyDevice:
        name = "local"

        def __init__(self, target):
            pass

        def time(self, built):
            timed.append(built)
            return steady[built]

    # The "build" handed back for timing again is the candidate itself: SteadyDevice times it by name.
    monkeypatch.setattr(tuner, "measure", lambda spec, c, target, device, lock: (Result(first[c], device.name), c))
    monkeypatch.setattr(tuner, "LocalDevice", SteadyDevice)
    cache, progress = TuningCache(tmp_path / "tuning.json"), Recorder()
    tune(graph, host_cpu(), cache, budget_seconds=60, progress=progress)
    stored = cache.lookup(workload.spec, host_cpu())
    assert stored.best == pick and stored.results[pick] == 1e-3 and stored.complete
    fastest_three = sorted(offered, key=first.__getitem__)[:FINALISTS]
    assert set(timed) == {*fastest_three, pick} and len(timed) == CONFIRM_ROUNDS * (FINALISTS + 1)
    last = progress.statuses[-1]
    assert last.done == last.total == len(offered) + 1  # timing the finalists again is the last step
