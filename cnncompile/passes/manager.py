"""The pass manager: run a pipeline, and after each pass verify, time, dump and check the numbers.

A pass is a function `Graph -> (Graph, changed)`; cnncompile's passes rewrite the graph in
place and return a RewriteLog as `changed` (true when anything fired, and saying what).
The manager adds what every pass needs and none should write itself:

* `verify`: the IR verifier after every pass, so the pass that broke an invariant is
  named (on in tests through CNNCOMPILE_VERIFY=1, `--verify` for users);
* per-pass wall time and node counts, for `compare` and for finding a slow pass;
* `dump_after`: the IR text after the named passes (`--dump-after PASS`);
* `check`: the float64 reference run after every pass on the same inputs, and each
  pass's output change measured against the previous pass's, so the first pass whose
  change leaves tolerance is named (`--check-each-pass`).

The check runs on a float64 twin of the graph (every floating constant and type promoted),
put through the same passes beside the real one. Rewrites that only re-associate exact
arithmetic agree there to ~1e-12, while in a float32 graph every folded weight is rounded
to float32 once, which through a deep network moves the outputs by as much as a subtle
bug would (1e-5 on ResNet-50). In float64 a 1e-10 tolerance separates the two cleanly:
a forgotten epsilon or a swapped axis moves the twin's outputs by 1e-6 and up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from cnncompile.errors import PassError, VerifyError
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.ir.verifier import verify as verify_graph
from cnncompile.numerics import relative_error
from cnncompile.passes.rewrite import RewriteLog

Pass = Callable[[Graph], tuple[Graph, RewriteLog]]

VERIFY_ENV = "CNNCOMPILE_VERIFY"
CHECK_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Step:
    """A pass as a pipeline runs it: its name (for records and --dump-after) and the function."""

    name: str
    run: Pass


@dataclass(frozen=True)
class NumericCheck:
    """How to run the float64 twin after every pass, and how far its outputs may move per pass.

    `evaluate` runs a graph on fixed inputs and returns its outputs in order; the caller
    supplies it (`cnncompile.tools.compare.reference_check` wraps the NumPy reference), as
    passes import no backend.
    """

    evaluate: Callable[[Graph], Sequence[np.ndarray]]
    tolerance: float = CHECK_TOLERANCE


@dataclass
class PassRecord:
    name: str
    seconds: float
    nodes_before: int
    nodes_after: int
    log: RewriteLog
    error: float | None = None  # with a NumericCheck: how far this pass moved the float64 twin's outputs

    @property
    def changed(self) -> bool:
        return bool(self.log)


@dataclass
class PipelineRun:
    graph: Graph
    records: list[PassRecord] = field(default_factory=list)
    tolerance: float | None = None

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.records)

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.records)

    @property
    def first_divergence(self) -> PassRecord | None:
        """The first pass whose output change left the tolerance, if any did."""
        return next((r for r in self.records if r.error is not None and not r.error <= self.tolerance), None)

    def report(self) -> str:
        """One line per pass: time, nodes before -> after, what fired, and the output change when checked."""
        lines = []
        for r in self.records:
            fired = ", ".join(f"{name} x{count}" for name, count in sorted(r.log.fired.items())) or "no change"
            error = "" if r.error is None else f"  change {r.error:.1e}"
            error += " FAIL" if r is self.first_divergence else ""
            lines.append(f"{r.name:<32} {r.seconds * 1e3:8.1f} ms  {r.nodes_before:4d} -> {r.nodes_after:4d} nodes"
                         f"{error}  {fired}")
        return "\n".join(lines) or "(no passes)"


def float64_twin(graph: Graph) -> Graph:
    """A copy of `graph` computing in float64: floating constants, value types and dtype attributes promoted."""
    twin = graph.copy()
    for value in twin.values():
        if value.type.dtype.is_float:
            value.type = TensorType(value.type.shape, DType.FLOAT64, value.type.layout)
    for value, array in twin.constants.items():
        if value.type.dtype is DType.FLOAT64:
            twin.constants[value] = array.astype(np.float64)
    for node in twin.nodes:
        node.attrs = replace(node.attrs, **{f.name: _promoted(getattr(node.attrs, f.name)) for f in fields(node.attrs)})
    return twin


def _promoted(value: Any) -> Any:
    if isinstance(value, DType) and value.is_float:
        return DType.FLOAT64
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float64)
    return value


def run_pipeline(graph: Graph, steps: Sequence[Step], *, verify: bool = False, dump_after: Collection[str] = (),
                 dump: Callable[[str, Graph], None] | None = None, check: NumericCheck | None = None) -> PipelineRun:
    """Run `steps` over `graph` (in place) and return the optimized graph with a record per pass."""
    verify = verify or os.environ.get(VERIFY_ENV) == "1"
    unknown = set(dump_after) - {s.name for s in steps}
    if unknown:
        raise PassError(f"--dump-after names {', '.join(sorted(unknown))}, which the pipeline does not run; "
                        f"it runs {', '.join(s.name for s in steps) or 'no passes'}")
    if verify:
        _verified(graph, "before the first pass")
    run = PipelineRun(graph, tolerance=check.tolerance if check else None)
    twin = float64_twin(graph) if check else None
    previous = check.evaluate(twin) if check else None
    for step in steps:
        before = len(graph.nodes)
        start = time.perf_counter()
        graph, log = step.run(graph)
        record = PassRecord(step.name, time.perf_counter() - start, before, len(graph.nodes), log)
        run.graph = graph
        run.records.append(record)
        if verify:
            _verified(graph, f"after pass '{step.name}'")
        if dump is not None and step.name in dump_after:
            dump(step.name, graph)
        if check is not None:
            twin, _ = step.run(twin)
            outputs = check.evaluate(twin)
            record.error = max((relative_error(a, b) for a, b in zip(outputs, previous, strict=True)), default=0.0)
            previous = outputs
    return run


def _verified(graph: Graph, when: str) -> None:
    try:
        verify_graph(graph)
    except VerifyError as err:
        raise PassError(f"{when}: {err}") from None
