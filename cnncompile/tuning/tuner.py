"""The measuring loop: each distinct conv workload's candidates timed on the target, into the cache.

Workloads come from the graph as the compile will see it (after the pipeline, every conv a
FusedConv), heaviest first by total multiply-adds, so a short budget goes where the time is.
Once all of a workload's candidates are measured, the FINALISTS fastest and the cost model's
pick are timed again, CONFIRM_ROUNDS times, alternating, each keeping its fastest time. On
a shared machine (a VM's neighbours, a change of clock) a disturbance can last a whole
measurement and make a candidate look several times slower than it is: in one ResNet-50
run, the cost model's Winograd pick for the 64->64 3x3 conv at 56x56 recorded 5.0 ms and
0.63 ms when timed again, and the tuned model ran slower than the untuned one. Timed
again in turns, a disturbance costs a finalist one round, not the choice.

A workload the cache already holds completely is skipped; one a previous run left half done
resumes with the candidates it lacks. Each measurement is stored as soon as it is made, so a
run stopped in any way (Ctrl-C, SIGTERM, even SIGKILL) loses at most the one in progress; the
finalists' second timings and whether the workload is complete are stored when it ends or is
cut short. A build cut short by Ctrl-C is no failure of its candidate (interrupts.py): it is
not stored, and the next run measures it.

With several devices (RPC servers), one thread per device takes the next candidate of the
current workload; builds are serialized (TVM's compiler is not known to be thread-safe and
they take the host's CPU anyway), the measurements overlap.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cnncompile.algorithms.applicability import ConvSpec
from cnncompile.backends.tvm.target import TargetSpec
from cnncompile.ir.graph import Graph, Node
from cnncompile.ir.types import Layout
from cnncompile.ops.conv import Conv
from cnncompile.ops.fused import FusedConv, conv_attrs
from cnncompile.ops.registry import attr_dict
from cnncompile.selection.candidates import Candidate, candidates, candidates_in
from cnncompile.selection.select import ranked
from cnncompile.selection.tuning_cache import Result, TuningCache, default_cache_path
from cnncompile.tuning.budget import DEFAULT_BUDGET_SECONDS, Budget, format_duration
from cnncompile.tuning.interrupts import Interrupts
from cnncompile.tuning.measure import Built, Device, LocalDevice, measure
from cnncompile.tuning.progress import Silent, TuneProgress, TuneStatus
from cnncompile.tuning.rpc import Tracker, open_devices


# How many workloads the budget left out a summary line names.
SHORT_NAMED = 3
# The fastest candidates of a workload timed again (with the cost model's pick), and how many more times.
FINALISTS = 3
CONFIRM_ROUNDS = 2


@dataclass(frozen=True)
class TuningOptions:
    """What `compile(..., tuning=...)` does: measure (unless `measure` is False: only read the cache)
    within `budget_seconds`, locally or on the devices of an RPC tracker, into the cache at `cache`
    (None: the default, ~/.cache/cnncompile/tuning.json)."""

    cache: str | os.PathLike | None = None
    measure: bool = True
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    rpc: Tracker | None = None
    progress: TuneProgress = field(default_factory=Silent)

    @property
    def cache_path(self) -> Path:
        return default_cache_path() if self.cache is None else Path(self.cache)


@dataclass(frozen=True)
class Workload:
    """One conv workload of a graph: the nodes computing it, and the layouts they store their output in."""

    spec: ConvSpec
    nodes: tuple[str, ...]
    layouts: tuple[Layout | None, ...] = ()

    def offered(self, target: TargetSpec) -> list[Candidate]:
        """Every candidate for the workload, and every one in the layouts its nodes were given (the final
        selection chooses among those: see selection/select.py)."""
        found = candidates(self.spec, target)
        found += [c for layout in self.layouts for c in candidates_in(layout, self.spec, target)]
        return list(dict.fromkeys(found))

    @property
    def macs(self) -> int:
        return self.spec.macs * len(self.nodes)


def workloads(graph: Graph) -> list[Workload]:
    """The graph's distinct conv workloads, heaviest (total multiply-adds) first."""
    found: dict[ConvSpec, list[Node]] = {}
    for node in graph.nodes:
        if node.op in (Conv, FusedConv):
            spec = ConvSpec.of(node.inputs[0].type, node.inputs[1].type, **attr_dict(conv_attrs(node.attrs)))
            found.setdefault(spec, []).append(node)
    listed = [Workload(spec, tuple(n.name for n in nodes), tuple(dict.fromkeys(n.outputs[0].type.layout
                                                                               for n in nodes)))
              for spec, nodes in found.items()]
    return sorted(listed, key=lambda w: w.macs, reverse=True)


@dataclass
class TuneReport:
    """What a run did: workloads measured completely, found in the cache, cut short, or never reached
    (those keep the cost model's choice), and every measurement (candidate, result) per workload."""

    tuned: list[ConvSpec] = field(default_factory=list)
    cached: list[ConvSpec] = field(default_factory=list)
    partial: list[ConvSpec] = field(default_factory=list)
    untuned: list[ConvSpec] = field(default_factory=list)
    measurements: dict[ConvSpec, dict[Candidate, Result]] = field(default_factory=dict)
    seconds: float = 0.0
    budget_seconds: float = 0.0

    @property
    def measured(self) -> int:
        return sum(len(results) for results in self.measurements.values())

    @property
    def failed(self) -> int:
        return sum(not r.ok for results in self.measurements.values() for r in results.values())

    def summary(self) -> str:
        text = (f"tuned {len(self.tuned)} conv workload(s) ({self.measured} measurements, {self.failed} failed) "
                f"in {format_duration(self.seconds)}; {len(self.cached)} already in the cache")
        short = [*self.partial, *self.untuned]
        if short:
            named = "; ".join(map(str, short[:SHORT_NAMED])) + (f"; {len(short) - SHORT_NAMED} more"
                                                                if len(short) > SHORT_NAMED else "")
            text += (f"; the {format_duration(self.budget_seconds)} budget ran out: {len(short)} workload(s) "
                     f"({len(self.partial)} partly measured) keep the cost model's choice where unmeasured: {named}")
        return text

    def as_dict(self) -> dict:
        return {"tuned": [str(s) for s in self.tuned], "cached": [str(s) for s in self.cached],
                "partial": [str(s) for s in self.partial], "untuned": [str(s) for s in self.untuned],
                "measurements": self.measured, "failed": self.failed, "seconds": round(self.seconds, 3)}


@dataclass
class _Run:
    """The state the worker threads share: the budget, the plan's progress, the lock guarding both, and
    where each measurement goes as soon as it is made."""

    budget: Budget
    total: int
    progress: TuneProgress
    devices: int
    cache: TuningCache
    interrupts: Interrupts = field(default_factory=Interrupts)
    done: int = 0
    stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    build_lock: threading.Lock = field(default_factory=threading.Lock)

    def eta(self) -> float:
        left = math.ceil((self.total - self.done) / self.devices) * self.budget.expected_cost()
        return max(0.0, min(left, self.budget.remaining()))


def _finalists(results: dict[Candidate, Result], pick: Candidate) -> list[Candidate]:
    """The FINALISTS fastest measured candidates, and the cost model's `pick` when it was measured."""
    fastest = sorted((c for c, r in results.items() if r.ok), key=lambda c: results[c].seconds)[:FINALISTS]
    return fastest + [pick] if pick not in fastest and pick in results and results[pick].ok else fastest


def _measure_workload(spec: ConvSpec, todo: deque[Candidate], pick: Candidate, target: TargetSpec,
                      devices: list[Device], run: _Run, results: dict[Candidate, Result]) -> None:
    """Measure `todo`'s candidates on `devices` (one thread each) until done or out of budget, then,
    when all are measured, time the finalists again."""
    label = str(spec)
    builds: dict[Candidate, Built] = {}  # the current finalists' only: a big workload's arrays take ~30 MB

    def work(device: Device) -> None:
        while True:
            with run.lock:
                if run.stopped or not todo or not run.budget.allows_another():
                    return
                candidate = todo.popleft()
                run.progress(TuneStatus(run.done, run.total, f"{label}: {candidate}", run.eta()))
            started = run.budget.elapsed()
            result, built = measure(spec, candidate, target, device, run.build_lock)
            run.interrupts.check()
            with run.lock:
                run.budget.costs.append(run.budget.elapsed() - started)
                results[candidate] = result
                run.cache.store(spec, target, {candidate: result}, complete=False)
                if built is not None:
                    builds[candidate] = built
                for dropped in set(builds) - set(_finalists(results, pick)):
                    del builds[dropped]
                run.done += 1
                run.progress(TuneStatus(run.done, run.total, label, run.eta()))

    if len(devices) == 1:
        work(devices[0])  # in this thread, where Ctrl-C lands
    else:
        with ThreadPoolExecutor(len(devices), thread_name_prefix="cnncompile-tune") as pool:
            try:
                list(pool.map(work, devices))
            except BaseException:
                run.stopped = True  # Ctrl-C: each worker ends the measurement it is in, then stops
                raise
    if not todo:
        _confirm(label, builds, devices[0], run, results)


def _confirm(label: str, builds: dict[Candidate, Built], device: Device, run: _Run,
             results: dict[Candidate, Result]) -> None:
    """Time the finalists (`builds`) again on one device, in turns, each keeping its fastest time; the
    run's last step for the workload, done at once when there is only one finalist or no budget left."""
    if len(builds) > 1 and run.budget.allows_another():
        run.progress(TuneStatus(run.done, run.total, f"{label}: the {len(builds)} fastest again", run.eta()))
        started = run.budget.elapsed()
        for _ in range(CONFIRM_ROUNDS):
            for candidate, built in builds.items():
                try:
                    seconds = device.time(built)
                except Exception:  # noqa: BLE001 - it ran once; its first time stands
                    continue
                if seconds < results[candidate].seconds:  # the record names the device that timed it
                    results[candidate] = Result(seconds, device.name)
        run.budget.costs.append(run.budget.elapsed() - started)
    run.done += 1
    run.progress(TuneStatus(run.done, run.total, label, run.eta()))


def tune(graph: Graph, target: TargetSpec, cache: TuningCache, budget_seconds: float = DEFAULT_BUDGET_SECONDS,
         rpc: Tracker | None = None, progress: TuneProgress | None = None) -> TuneReport:
    """Measure the candidates of every conv workload of `graph` not yet in `cache`, within the budget."""
    progress = progress or Silent()
    budget = Budget(budget_seconds)
    report = TuneReport(budget_seconds=budget_seconds)
    plan: list[tuple[ConvSpec, deque[Candidate], Candidate]] = []
    for workload in workloads(graph):
        offered = workload.offered(target)
        done, complete = cache.measured_candidates(workload.spec, target)
        todo = deque(c for c in offered if c not in done)
        if complete or not todo:
            report.cached.append(workload.spec)
        else:
            plan.append((workload.spec, todo, ranked(offered, workload.spec, target)[0].candidate))
    devices: list[Device] = open_devices(rpc, target) if rpc is not None and plan else [LocalDevice(target)]
    run = _Run(budget, sum(len(todo) + 1 for _, todo, _ in plan), progress, len(devices),  # + 1: the finalists
               cache)
    with run.interrupts.watching():
        try:
            for spec, todo, pick in plan:
                results: dict[Candidate, Result] = {}
                planned = len(todo)
                try:
                    _measure_workload(spec, todo, pick, target, devices, run, results)
                finally:
                    if results:
                        cache.store(spec, target, results, complete=len(results) == planned)
                        report.measurements[spec] = results
                (report.partial if todo and results else report.untuned if todo else report.tuned).append(spec)
        finally:
            report.seconds = budget.elapsed()
            progress.finish(report)
    return report


def tune_graph(graph: Graph, target: TargetSpec, options: TuningOptions) -> TuneReport:
    """`tune` as `compile(..., tuning=options)` runs it, on the graph its pipeline produced."""
    return tune(graph, target, TuningCache(options.cache_path), options.budget_seconds, options.rpc, options.progress)
