"""Differential testing: a random CNN compiled for LLVM one way (`Mode`), against the float64
reference and against onnxruntime, judged by the numerical policy.

    result = check(draw_spec(7), Mode.parse("O3-random"))
    assert result.outcome is Outcome.PASS, result.message()

A mode is a pipeline (O0..O3) and who makes O3's choices: the cost model, as a plain
compile does, or a seeded random "tuning cache" (`random_lookup`) that gives every
candidate (algorithm, layout, tile) of every conv a made-up time, and assign-layouts lays the
graph out in NCHWc or NHWC as the seed draws. The selection pass then
picks among the candidates that apply where each conv stands exactly as it would among
measured ones, so every algorithm, layout and tile the backend can build gets built, not
only those the cost model favours on this CPU.

The compiled model is judged as `cnncompile validate` judges it (tools/validate.judge):
end to end within its loosest node's tolerance, else node by node. onnxruntime, on the same
graph exported to ONNX, is judged against the same float64 reference by float32's bound,
and node by node too when it is exceeded (`peer_layerwise`): a node where onnxruntime and
the reference disagree points at the reference, the exporter, or onnxruntime itself.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from cnncompile.algorithms.applicability import ConvSpec
from cnncompile.api import target_pipeline
from cnncompile.backends.reference import run_reference
from cnncompile.backends.tvm.build import build_module
from cnncompile.backends.tvm.module import lower_graph
from cnncompile.backends.tvm.runtime import Signature
from cnncompile.backends.tvm.target import TargetSpec, parse_target
from cnncompile.compiled import CompiledModel, Provenance
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.ir.graph import Graph, Node
from cnncompile.ir.types import NHWC, DType, LayoutKind, nchwc
from cnncompile.numerics import relative_error, tolerance
from cnncompile.passes.manager import PipelineRun, Step, run_pipeline
from cnncompile.selection.candidates import Candidate, candidates, candidates_in
from cnncompile.selection.explain import choices_of
from cnncompile.selection.select import Lookup, select_conv_algorithms
from cnncompile.selection.tuning_cache import Measured
from cnncompile.tools.peers import onnxruntime_session
from cnncompile.tools.random_cnn import Spec, build, random_inputs, to_python
from cnncompile.tools.validate import judge

PIPELINES = ("O0", "O1", "O2", "O3")
# Every layout a CPU conv may be given: the random times cover the candidates in each, so that the
# choice after assign-layouts (among the candidates in the layout a conv was given) is random too.
LAYOUTS = (None, NHWC, nchwc(4), nchwc(8), nchwc(16))
# The kinds assign-layouts may lay a graph out in; O3-random draws one per graph.
LAYOUT_KINDS = (LayoutKind.NCHWC, LayoutKind.NHWC)


class Choices(enum.Enum):
    """Who chooses each conv's algorithm, layout and tile at O3."""

    COST_MODEL = "cost-model"
    RANDOM = "random"


@dataclass(frozen=True)
class Mode:
    pipeline: str
    choices: Choices = Choices.COST_MODEL

    def __str__(self) -> str:
        return self.pipeline + ("-random" if self.choices is Choices.RANDOM else "")

    @classmethod
    def parse(cls, text: str) -> Mode:
        """`O2`, or `O3-random` (only O3 makes choices)."""
        pipeline, _, random = text.partition("-")
        if pipeline not in PIPELINES or random not in ("", "random") or (random and pipeline != "O3"):
            raise ValueError(f"unknown mode '{text}': one of {', '.join(PIPELINES)}, O3-random")
        return cls(pipeline, Choices.RANDOM if random else Choices.COST_MODEL)


class Outcome(enum.Enum):
    PASS = "pass"
    MISCOMPILE = "miscompile"   # the compiled model is outside the policy's tolerance of float64
    CRASH = "crash"             # compiling or running a valid graph raised
    PEER = "peer"               # onnxruntime disagrees with the float64 reference


@dataclass(frozen=True)
class Result:
    spec: Spec
    mode: Mode
    outcome: Outcome
    output: str = ""
    error: float = 0.0
    tolerance: float = 0.0
    detail: str = ""
    choices: tuple[Candidate, ...] = field(default=(), compare=False)

    def message(self) -> str:
        """What failed, where, and the spec to reproduce it."""
        lines = [f"{self.outcome.value}: seed {self.spec.seed}, graph random_cnn_{self.spec.seed}, -p {self.mode}"
                 + (f", output '{self.output}': error {self.error:.3g} > tolerance {self.tolerance:g}"
                    if self.output else ""),
                 *([self.detail] if self.detail else []), str(self.spec),
                 *([f"choices: {', '.join(map(str, self.choices))}"] if self.choices else []),
                 f"spec: {to_python(self.spec)}"]
        return "\n".join(lines)


def random_lookup(seed: int, target: TargetSpec) -> Lookup:
    """A made-up tuning cache: each candidate of each conv workload a time in [0, 1) hashed from the seed,
    the workload and the candidate (the same candidate gets the same time in both selection passes)."""
    def lookup(spec: ConvSpec) -> Measured:
        offered = dict.fromkeys([*candidates(spec, target),
                                 *(c for layout in LAYOUTS for c in candidates_in(layout, spec, target))])
        seconds = {c: zlib.crc32(f"{seed}|{spec}|{c}".encode()) / 2 ** 32 for c in offered}
        return Measured(min(seconds, key=seconds.__getitem__), seconds, {}, {}, True)
    return lookup


def optimize_mode(graph: Graph, mode: Mode, seed: int, target: TargetSpec) -> PipelineRun:
    """A copy of `graph` through `mode`'s pipeline for `target`; random choices are drawn from `seed`."""
    pipeline = target_pipeline(mode.pipeline, target)
    if mode.choices is Choices.RANDOM and "assign-layouts" in {p.name for p in pipeline.passes}:
        pipeline = pipeline.with_options("assign-layouts", layout=LAYOUT_KINDS[zlib.crc32(f"{seed}".encode()) % 2])
    steps = pipeline.steps()
    if mode.choices is Choices.RANDOM:
        lookup = random_lookup(seed, target)
        steps = [Step(s.name, partial(select_conv_algorithms, target=target, lookup=lookup,
                                      keep_layouts=bool(p.options.get("keep_layouts"))))
                 if s.name == "select-conv-algorithms" else s for p, s in zip(pipeline.passes, steps)]
    return run_pipeline(graph.copy(), steps)


def compile_mode(graph: Graph, mode: Mode, seed: int = 0, target: str = "llvm") -> CompiledModel:
    """`graph` (not changed) compiled for `target` by `mode`; random choices are drawn from `seed`."""
    spec = parse_target(target)
    run = optimize_mode(graph, mode, seed, spec)
    lowered = lower_graph(run.graph, spec)
    return CompiledModel(build_module(lowered.module, spec), spec, Signature.of(run.graph),
                         Provenance(f"graph:{graph.name}", "", str(mode)), run.graph, lowered.kernels,
                         choices=choices_of(run))


def _alone(node: Node, graph: Graph) -> Graph:
    """`node` as a graph of its own: its activations inputs, its constants constants."""
    single = Graph(node.name)
    inputs = [single.add_constant(graph.constants[v], v.name) if graph.is_constant(v)
              else single.add_input(v.name, v.type) for v in node.inputs]
    single.mark_outputs(*single.add_node(node.op, inputs, node.attrs))
    return single


def peer_layerwise(graph: Graph, inputs: Mapping[str, np.ndarray]) -> tuple[str, float] | None:
    """The first node whose onnxruntime kernel, on the float64 reference's inputs to it (rounded to
    float32), is outside float32's bound of the reference kernel; None when every node is within it."""
    captured: dict[str, list[np.ndarray]] = {}
    run_reference(graph, inputs, dtype=DType.FLOAT64, hook=lambda node, args: captured.__setitem__(node.name, args))
    bound = tolerance(DType.FLOAT32)
    for node in graph.nodes:
        gold_args = captured[node.name]
        want = node.op.run(list(gold_args), node.attrs)
        single = _alone(node, graph)
        feeds = {v.name: np.asarray(a, np.float32) for v, a in zip(node.inputs, gold_args) if not graph.is_constant(v)}
        got = onnxruntime_session(to_onnx(single), threads=1).run(None, feeds)
        error = max(relative_error(g, w) for g, w in zip(got, want))
        if not error <= bound:
            return f"{node.name} ({node.op.name})", error
    return None


def _peer(spec: Spec, graph: Graph, inputs: Mapping[str, np.ndarray], mode: Mode) -> Result | None:
    """onnxruntime against the float64 reference: None when it agrees (end to end or node by node)."""
    gold = run_reference(graph, inputs, dtype=DType.FLOAT64)
    session = onnxruntime_session(to_onnx(graph), threads=1)
    names = [o.name for o in session.get_outputs()]
    errors = {n: relative_error(got, gold[n]) for n, got in zip(names, session.run(None, dict(inputs)))}
    bound = tolerance(DType.FLOAT32)
    worst = max(errors, key=errors.__getitem__)
    if errors[worst] <= bound:
        return None
    diverged = peer_layerwise(graph, inputs)
    if diverged is None:
        return None
    return Result(spec, mode, Outcome.PEER, worst, errors[worst], bound,
                  f"onnxruntime first diverges at node {diverged[0]}: error {diverged[1]:.3g} on gold inputs")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def check(spec: Spec, mode: Mode, peer: bool = True) -> Result:
    """`spec`'s graph compiled by `mode` against float64 (and, with `peer`, onnxruntime against float64)."""
    graph = build(spec)
    inputs = random_inputs(spec)
    if peer:
        try:
            disagreement = _peer(spec, graph, inputs, mode)
        except Exception as err:  # the exporter or onnxruntime refusing a valid graph
            return Result(spec, mode, Outcome.CRASH, detail=f"exporting to onnxruntime: {_first_line(err)}")
        if disagreement is not None:
            return disagreement
    try:
        compiled = compile_mode(graph, mode, spec.seed)
        verdict = judge(compiled, graph, inputs)
    except Exception as err:  # a crash on a valid graph is a finding, reported with the spec
        return Result(spec, mode, Outcome.CRASH, detail=_first_line(err))
    choices = tuple(c.chosen for c in compiled.choices)
    if verdict.passed:
        return Result(spec, mode, Outcome.PASS, choices=choices)
    output = max(verdict.outputs, key=lambda n: verdict.outputs[n][0])
    divergence = verdict.first_divergence
    detail = (f"first divergence: node {divergence.node} ({divergence.op}), error {divergence.max_abs:.3g} on gold "
              f"inputs, {divergence.ratio:.3g}x its bound" if divergence is not None else "non-finite output")
    return Result(spec, mode, Outcome.MISCOMPILE, output, verdict.outputs[output][0], verdict.tolerance, detail,
                  choices)


def same_failure(a: Result, b: Result) -> bool:
    """Whether `b` fails as `a` did (for shrinking: the same outcome, and a crash with the same error type)."""
    return b.outcome is a.outcome and (a.outcome is not Outcome.CRASH or
                                       b.detail.split(":")[0] == a.detail.split(":")[0])
