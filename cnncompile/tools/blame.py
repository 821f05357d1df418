"""`validate --blame`: which pass, or which conv's choice, put a build out of tolerance, and which layers to
keep in float32 so that a reduced-precision build passes.

Every variant below is rebuilt for the same target and judged as validate judges (`judge_runs`: the
user's `--tolerance`, else the build's own, with the layer-by-layer rescue) against the float64
reference of the model as imported, on the same inputs, whatever `--vs` the validation compared with:
the reference is the one peer that every variant can be held to.

1. Passes. The pipeline runs once with the float64 twin check of `compare --check-each-pass`
   (passes.manager): the first pass that moves the twin's outputs beyond CHECK_TOLERANCE changed
   the model's arithmetic, which no rewrite may. Then the pipeline is bisected on real builds: the
   graph after its first k passes is compiled as it stands (O0 adds none) and judged; the first pass
   after which the build leaves tolerance is named. Bisection assumes that a later pass does not
   undo an earlier one's error, so it takes log2(passes) builds, not one per pass.
2. Choices. Each conv of the failing build has each of its choices reverted, one at a time, in the
   optimized graph itself: its algorithm to direct (with the default tile, since a tile belongs to
   the algorithm's template), its layout to NCHW (with the transforms that keep its neighbours'
   layouts), its tile to the default; its precision to float32 by recompiling with it kept in
   float32 (`--keep-fp32`). The first reversal, in graph order, after which the build passes is the
   choice at fault. Convs are named by the node name `--keep-fp32` takes and by the ONNX value their
   output stands for (`Value.origin`).
3. Reduced precision. Layers computing in fp16/bf16 are kept in float32 one at a time, the one with
   the largest error of its own first (each layer on gold inputs, tools.layers), until the build
   passes; then each kept layer but the last is dropped again where the build still passes without
   it. The list printed is the one the last passing build was compiled with.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.api import compile as compile_model, target_pipeline
from cnncompile.backends.reference import run_reference
from cnncompile.backends.tvm.target import parse_target
from cnncompile.compiled import CompiledModel
from cnncompile.errors import CnnCompileError
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.fused import FusedConv, residual_of
from cnncompile.ops.layout import LayoutTransform, LayoutTransformAttrs
from cnncompile.passes.manager import CHECK_TOLERANCE, run_pipeline
from cnncompile.passes.precision import POLICY, Role
from cnncompile.selection.candidates import of_attrs
from cnncompile.tools.compare import reference_check
from cnncompile.tools.inputs import InputSet
from cnncompile.tools.layers import compare_layers, finite
from cnncompile.tools.validate import ValidateOptions, Validation, judge_runs

Gold = Sequence[Mapping[str, np.ndarray]]


class Reversal(enum.Enum):
    """A conv choice put back to the plain way of computing it."""

    ALGORITHM = "algorithm"  # to direct, default tile
    LAYOUT = "layout"        # to NCHW
    TILE = "tile"            # to the plan's own
    PRECISION = "precision"  # to float32


@dataclass(frozen=True)
class Verdict:
    """How one rebuilt variant judged: DESIGN.md's error end to end and the tolerance it was held to;
    `failure` says why it could not be built at all."""

    error: float
    tolerance: float
    passed: bool
    failure: str | None = None

    @classmethod
    def of(cls, validation: Validation) -> Verdict:
        return cls(validation.error, validation.tolerance, validation.passed)

    def as_dict(self) -> dict:
        return {"error": finite(self.error), "tolerance": finite(self.tolerance), "passed": self.passed,
                "failure": self.failure}

    def __str__(self) -> str:
        if self.failure is not None:
            return f"not built ({self.failure})"
        return f"error {self.error:.2e}, tolerance {self.tolerance:g}: {'PASS' if self.passed else 'FAIL'}"


@dataclass(frozen=True)
class PrefixTrial:
    """The build of the graph after the pipeline's first `passes` passes (`last` the last of them)."""

    passes: int
    last: str | None
    verdict: Verdict

    def as_dict(self) -> dict:
        return {"passes": self.passes, "last": self.last, **self.verdict.as_dict()}


@dataclass(frozen=True)
class ChoiceTrial:
    """One conv's choice reverted (`was` -> `now`, as candidates write them, or the element type)."""

    node: str
    onnx_name: str
    reversal: Reversal
    was: str
    now: str
    verdict: Verdict

    def as_dict(self) -> dict:
        return {"node": self.node, "onnx_name": self.onnx_name, "reversal": self.reversal.value,
                "was": self.was, "now": self.now, **self.verdict.as_dict()}

    def __str__(self) -> str:
        return f"{self.node} (ONNX '{self.onnx_name}'): {self.reversal.value} {self.was} -> {self.now}"


@dataclass(frozen=True)
class KeepFp32:
    """The nodes to keep in float32 (the user's own first) and how the build compiled with them judged."""

    nodes: tuple[str, ...]
    onnx_names: tuple[str, ...]
    verdict: Verdict

    @property
    def flag(self) -> str:
        return f"--keep-fp32 {','.join(self.nodes)}"

    def as_dict(self) -> dict:
        return {"nodes": list(self.nodes), "onnx_names": list(self.onnx_names), "flag": self.flag,
                **self.verdict.as_dict()}


@dataclass
class Blame:
    failed: bool
    changes: list[tuple[str, float]]  # each pass's float64 twin change
    prefixes: list[PrefixTrial] = field(default_factory=list)
    first_failing_pass: PrefixTrial | None = None
    choices: list[ChoiceTrial] = field(default_factory=list)
    keep_fp32: KeepFp32 | None = None

    @property
    def changed_numbers(self) -> tuple[int, str, float] | None:
        """The first pass (1-based position, name, change) that moved the float64 twin's outputs."""
        return next(((i, name, c) for i, (name, c) in enumerate(self.changes, 1) if not c <= CHECK_TOLERANCE), None)

    @property
    def choice_at_fault(self) -> ChoiceTrial | None:
        return next((t for t in self.choices if t.verdict.passed), None)

    def as_dict(self) -> dict:
        changed, fault = self.changed_numbers, self.choice_at_fault
        return {
            "failed": self.failed,
            "pass_changes": [{"pass": name, "change": finite(c)} for name, c in self.changes],
            "changed_numbers": None if changed is None else {"position": changed[0], "pass": changed[1],
                                                             "change": finite(changed[2])},
            "bisection": [p.as_dict() for p in self.prefixes],
            "first_failing_pass": None if self.first_failing_pass is None else self.first_failing_pass.as_dict(),
            "choices": [t.as_dict() for t in self.choices],
            "choice_at_fault": None if fault is None else fault.as_dict(),
            "keep_fp32": None if self.keep_fp32 is None else self.keep_fp32.as_dict(),
        }

    def report(self) -> str:
        lines = ["blame (each variant rebuilt and judged against the float64 reference):"]
        changed = self.changed_numbers
        lines.append("  passes on the float64 twin: " + (
            f"pass {changed[0]} '{changed[1]}' changed the arithmetic (outputs moved {changed[2]:.1e}, a correct "
            f"rewrite moves them < {CHECK_TOLERANCE:g})" if changed else
            f"no pass changed the arithmetic (every change < {CHECK_TOLERANCE:g})"))
        if not self.failed:
            lines.append("  the build passes: nothing to bisect")
            return "\n".join(lines)
        lines.append("  pipeline bisected (the graph after its first k passes, built as it stands):")
        lines += [f"    after {p.passes:2d} ({p.last or 'none'}): {p.verdict}" for p in self.prefixes]
        if self.first_failing_pass is not None:
            p = self.first_failing_pass
            lines.append(f"  first pass after which the build leaves tolerance: pass {p.passes} '{p.last}'")
        elif self.prefixes and not self.prefixes[0].verdict.passed:
            lines.append("  the model built without any pass already fails: no pass is at fault")
        lines.append("  conv choices reverted one at a time:")
        fault = self.choice_at_fault
        lines += [f"    {t}: {t.verdict}" + ("  <-- at fault" if t is fault else "") for t in self.choices]
        if not self.choices:
            lines.append("    (the build has no conv choice to revert)")
        lines.append(f"  choice at fault: {fault} (reverting it passes)" if fault else
                     "  no single reverted choice makes the build pass")
        if self.keep_fp32 is not None:
            k = self.keep_fp32
            onnx = ", ".join(f"{n} (ONNX '{o}')" for n, o in zip(k.nodes, k.onnx_names))
            lines.append(f"  keep in float32 to pass: {onnx or 'nothing'}; verified: {k.verdict}" if k.verdict.passed
                         else f"  even with every reduced layer in float32 the build fails: {k.verdict}")
            if k.verdict.passed:
                lines.append(f"  {k.flag}")
        return "\n".join(lines)


class _Judge:
    """Builds variants of one validation and judges each on its inputs against the float64 reference."""

    def __init__(self, graph: Graph, options: ValidateOptions, sets: Sequence[InputSet]):
        self.graph, self.options, self.sets = graph, options, list(sets)
        self.gold = [run_reference(graph, s, dtype=DType.FLOAT64) for s in self.sets]

    def compile(self, model: Graph, pipeline: str | None = None, keep_fp32: Sequence[str] | None = None
                ) -> CompiledModel:
        """`model` compiled as validate compiles; with `pipeline` "O0", an optimized graph built as it stands."""
        o = self.options
        if pipeline == "O0":
            return compile_model(model, o.target, "O0", memory_limit=o.memory_limit)
        return compile_model(model, o.target, o.pipeline, memory_limit=o.memory_limit, precision=o.precision,
                             keep_fp32=o.keep_fp32 if keep_fp32 is None else tuple(keep_fp32))

    def judged(self, compiled: CompiledModel) -> Validation:
        ours = [compiled.run(s) for s in self.sets]
        return judge_runs(compiled, self.graph, self.sets, ours, self.gold, "reference", self.options.per_layer,
                          self.options.tolerance)

    def verdict(self, build: Callable[[], CompiledModel]) -> Verdict:
        """The verdict on what `build()` compiles; a variant that cannot be built fails, saying why."""
        try:
            return Verdict.of(self.judged(build()))
        except CnnCompileError as err:
            return Verdict(float("inf"), float("nan"), False, str(err).splitlines()[0])


def pass_changes(graph: Graph, options: ValidateOptions, inputs: InputSet) -> list[tuple[str, float]]:
    """Each pass of the pipeline a compile runs, with how far it moved the float64 twin's outputs."""
    steps = target_pipeline(options.pipeline, parse_target(options.target), precision=options.precision,
                            keep_fp32=options.keep_fp32).steps()
    run = run_pipeline(graph.copy(), steps, check=reference_check(inputs))
    return [(r.name, r.error) for r in run.records]


def bisect_pipeline(judge: _Judge) -> tuple[list[PrefixTrial], PrefixTrial | None]:
    """The prefixes tried, and the shortest that fails when the empty one passes (the full one failing)."""
    o = judge.options
    names = [s.name for s in target_pipeline(o.pipeline, parse_target(o.target), precision=o.precision,
                                             keep_fp32=o.keep_fp32).steps()]

    def trial(k: int) -> PrefixTrial:
        steps = target_pipeline(o.pipeline, parse_target(o.target), precision=o.precision,
                                keep_fp32=o.keep_fp32).steps()[:k]
        return PrefixTrial(k, names[k - 1] if k else None,
                           judge.verdict(lambda: judge.compile(run_pipeline(judge.graph.copy(), steps).graph, "O0")))

    tried = [trial(0)]
    if not tried[0].verdict.passed:
        return tried, None
    low, high, failing = 0, len(names), None
    while high - low > 1:
        mid = (low + high) // 2
        tried.append(trial(mid))
        if tried[-1].verdict.passed:
            low = mid
        else:
            high, failing = mid, tried[-1]
    if failing is None:
        tried.append(trial(high))
        failing = tried[-1] if not tried[-1].verdict.passed else None
    return sorted(tried, key=lambda p: p.passes), failing


def _transformed(graph: Graph, value: Value, layout, hint: str, nodes: list[Node]) -> Value:
    """`value` as a copy stored in `layout`, the LayoutTransform making it appended to `nodes`."""
    copy = Value(graph.fresh_name(f"{value.name}_{layout or 'nchw'}"),
                 TensorType(value.type.shape, value.type.dtype, layout), value.origin)
    nodes.append(Node(LayoutTransform, [value], [copy], LayoutTransformAttrs(layout), graph.fresh_name(hint, "node")))
    return copy


def in_nchw(graph: Graph, node: Node) -> list[Node]:
    """`node` (a FusedConv of `graph`) computing in NCHW: its laid-out operands and its output transformed
    around it, so that its readers and writers keep their layouts."""
    nodes: list[Node] = []
    inputs = list(node.inputs)
    z = residual_of(inputs)
    for position, value in enumerate(inputs):
        if (position == 0 or value is z) and value.type.layout is not None:
            inputs[position] = _transformed(graph, value, None, f"{node.name}_blame_in", nodes)
    attrs = replace(node.attrs, layout=None, tile=())
    (y_type,) = FusedConv.infer([v.type for v in inputs], attrs)
    (out,) = node.outputs
    if out.type.layout is None:
        return [*nodes, Node(FusedConv, inputs, [out], attrs, node.name)]
    y = Value(graph.fresh_name(f"{out.name}_nchw"), y_type, out.origin)
    nodes.append(Node(FusedConv, inputs, [y], attrs, node.name))
    nodes.append(Node(LayoutTransform, [y], [out], LayoutTransformAttrs(out.type.layout),
                      graph.fresh_name(f"{node.name}_blame_out", "node")))
    return nodes


def reverted(optimized: Graph, name: str, reversal: Reversal) -> Graph:
    """A copy of `optimized` with node `name`'s choice put back (ALGORITHM, LAYOUT or TILE)."""
    graph = optimized.copy()
    nodes = []
    for node in graph.nodes:
        if node.name != name:
            nodes.append(node)
        elif reversal is Reversal.LAYOUT:
            nodes += in_nchw(graph, node)
        else:
            algorithm = ConvAlgorithm.DIRECT if reversal is Reversal.ALGORITHM else node.attrs.algorithm
            nodes.append(Node(node.op, node.inputs, node.outputs, replace(node.attrs, algorithm=algorithm, tile=()),
                              node.name))
    graph.nodes = nodes
    return graph


def _reduced(node: Node) -> bool:
    """Whether `node` computes from fp16/bf16 operands (a REDUCED op of the precision policy)."""
    policy = POLICY.get(node.op)
    dtype = node.inputs[0].type.dtype
    return policy is not None and policy.role is Role.REDUCED and dtype.is_float and dtype is not DType.FLOAT32


def choice_trials(judge: _Judge, compiled: CompiledModel) -> list[ChoiceTrial]:
    """Every choice of every conv of `compiled`, reverted one at a time, in graph order."""
    trials = []
    optimized = compiled.graph
    for node in (n for n in optimized.nodes if n.op is FusedConv):
        chosen, onnx_name = of_attrs(node.attrs), node.outputs[0].origin
        offered = [(Reversal.ALGORITHM, node.attrs.algorithm is not ConvAlgorithm.DIRECT,
                    str(replace(chosen, algorithm=ConvAlgorithm.DIRECT, tile=()))),
                   (Reversal.LAYOUT, node.attrs.layout is not None, str(replace(chosen, layout=None, tile=()))),
                   (Reversal.TILE, bool(node.attrs.tile), str(replace(chosen, tile=())))]
        for reversal, applies, now in offered:
            if applies:
                verdict = judge.verdict(lambda: judge.compile(reverted(optimized, node.name, reversal), "O0"))
                trials.append(ChoiceTrial(node.name, onnx_name, reversal, str(chosen), now, verdict))
        if _reduced(node):
            keep = (*judge.options.keep_fp32, node.name)
            verdict = judge.verdict(lambda: judge.compile(judge.graph, keep_fp32=keep))
            trials.append(ChoiceTrial(node.name, onnx_name, Reversal.PRECISION, node.inputs[0].type.dtype.value,
                                      DType.FLOAT32.value, verdict))
    return trials


def fewest_fp32(judge: _Judge, compiled: CompiledModel, sets: Sequence[InputSet]) -> KeepFp32:
    """The fewest reduced layers (found greedily, see the module docstring) to keep in float32 to pass."""
    own_error = {c.node: c.max_rel for c in compare_layers(judge.graph, compiled.graph, compiled.run_node, sets[0])}
    reduced = [n for n in compiled.graph.nodes if _reduced(n)]
    order = sorted(reduced, key=lambda n: -own_error.get(n.name, 0.0))
    origin = {n.name: n.outputs[0].origin for n in reduced}
    given = tuple(judge.options.keep_fp32)

    def verdict(kept: Sequence[str]) -> Verdict:
        return judge.verdict(lambda: judge.compile(judge.graph, keep_fp32=(*given, *kept)))

    kept: list[str] = []
    last = Verdict(float("inf"), float("nan"), False, "no reduced layer to keep")
    for node in order:
        kept.append(node.name)
        last = verdict(kept)
        if last.passed:
            break
    if last.passed:
        for name in kept[:-1]:
            fewer = [k for k in kept if k != name]
            trial = verdict(fewer)
            if trial.passed:
                kept, last = fewer, trial
    kept.sort(key=[n.name for n in reduced].index)  # in graph order, as a reader scans the model
    return KeepFp32((*given, *kept), tuple(origin.get(n, n) for n in (*given, *kept)), last)


def blame(graph: Graph, options: ValidateOptions, sets: Sequence[InputSet], validation: Validation) -> Blame:
    """Why `validation` (of `graph` compiled as `options` say, on `sets`) failed; see the module docstring.
    A build that passed gets the float64 twin check alone: there is no error to bisect."""
    result = Blame(not validation.passed, pass_changes(graph, options, sets[0]))
    if validation.passed:
        return result
    judge = _Judge(graph, options, sets)
    result.prefixes, result.first_failing_pass = bisect_pipeline(judge)
    compiled = judge.compile(graph)
    result.choices = choice_trials(judge, compiled)
    if any(_reduced(n) for n in compiled.graph.nodes):
        result.keep_fp32 = fewest_fp32(judge, compiled, sets)
    return result
