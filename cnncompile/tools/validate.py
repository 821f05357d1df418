"""`cnncompile validate`: the optimized, compiled model against a peer on the same inputs.

The peer is the float64 reference of the model as imported (before any pass) unless `--vs` names another
(cnncompile.tools.versus), or the outputs of an earlier run loaded from a file (tools.outputs). End to
end, each output is compared by DESIGN.md's error, within the loosest tolerance of the compiled nodes:
their element type's (float32's, bfloat16's) or their conv algorithm's (Winograd, FFT), or within the
user's `tolerance`, which replaces it.

Layer by layer (tools.layers) every compiled node runs on the gold float64 values of its inputs and is
judged against what its arithmetic predicts; that always compares with the float64 reference, whatever
the end-to-end peer. It runs when asked (`per_layer`), and when the end-to-end error exceeds the build's
tolerance, because float32 rounding alone compounds with depth (ResNet-50 ends near 5e-5 for onnxruntime
too): then the model passes when every layer does (not under a user's `tolerance`, which is end to end).
The first layer out of proportion is named by the ONNX value it computes.

For a classifier (one output shaped [N, classes]), top-1 and top-5 agreement with the peer are counted
over every row of every input set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from cnncompile.api import compile as compile_model
from cnncompile.backends.reference import run_reference
from cnncompile.compiled import CompiledModel
from cnncompile.errors import ModelError
from cnncompile.ir.graph import Graph, Node
from cnncompile.ir.types import DType
from cnncompile.numerics import DTYPE_TOLERANCE, relative_error, tolerance
from cnncompile.resources import estimate_memory, host_limit
from cnncompile.tools.inputs import InputSet, conform, input_specs
from cnncompile.tools.layers import SAFETY, LayerCheck, compare_layers, finite
from cnncompile.tools.outputs import load_run, save_run
from cnncompile.tools.versus import Peer, PeerKind, peer_runner


@dataclass(frozen=True)
class Agreement:
    """How often a classifier's compiled top-1 class is the peer's (`top1`), and how often the peer's top-1
    is among the compiled top 5 (`top5`; None under 5 classes), over `rows` rows."""

    top1: float
    top5: float | None
    rows: int

    def as_dict(self) -> dict:
        return {"top1": self.top1, "top5": self.top5, "rows": self.rows}


@dataclass
class Validation:
    passed: bool
    error: float
    tolerance: float
    target: str
    pipeline: str
    precision: str
    vs: str
    sets: int
    outputs: dict[str, tuple[float, tuple[int, ...]]]
    tolerance_given: bool = False
    agreement: Agreement | None = None
    layers: list[LayerCheck] = field(default_factory=list)
    model: CompiledModel | None = field(default=None, repr=False, compare=False)  # what was judged (--html)

    @property
    def first_divergence(self) -> LayerCheck | None:
        """The first layer, in the compiled graph's order, out of proportion to its bound."""
        return next((c for c in self.layers if not c.passed), None)

    def as_dict(self) -> dict:
        result = {
            "passed": self.passed, "error": finite(self.error), "tolerance": self.tolerance,
            "target": self.target, "pipeline": self.pipeline, "precision": self.precision, "vs": self.vs,
            "sets": self.sets,
            "outputs": {name: {"error": finite(e), "shape": list(s)} for name, (e, s) in self.outputs.items()},
            "agreement": None if self.agreement is None else self.agreement.as_dict(),
        }
        if self.layers:
            divergence = self.first_divergence
            result["layers"] = [c.as_dict() for c in self.layers]
            result["first_divergence"] = None if divergence is None else \
                {**divergence.as_dict(), "error": finite(divergence.max_rel)}
        return result

    def report(self) -> str:
        lines = [f"{name}: error {e:.2e} (shape {list(s)})" for name, (e, s) in self.outputs.items()]
        given = ", given" if self.tolerance_given else ""
        lines.append(f"end to end vs {self.vs}: error {self.error:.2e}, tolerance {self.tolerance:g}{given} "
                     f"({self.target}, -p {self.pipeline}, {self.precision}; {self.sets} input set(s))")
        if self.agreement is not None:
            top5 = "" if self.agreement.top5 is None else f", top-5 {self.agreement.top5:.1%}"
            lines.append(f"classes: top-1 agreement {self.agreement.top1:.1%}{top5} over {self.agreement.rows} rows")
        if self.layers:
            lines.extend(self._layer_lines())
        lines.append("PASS" if self.passed else "FAIL")
        return "\n".join(lines)

    def _layer_lines(self) -> list[str]:
        divergence = self.first_divergence
        width = max(len("onnx value"), *(len(c.onnx_name) for c in self.layers))
        lines = [f"layer by layer vs the float64 reference (each on gold inputs; fails beyond {SAFETY:g}x its bound):",
                 f"  {'onnx value':<{width}}  {'op':<16} {'max_abs':>9} {'max_rel':>9} {'cosine':>10} {'bound':>9} "
                 f"{'x bound':>8}"]
        for c in self.layers:
            mark = "  <-- first out of proportion" if c is divergence else ("  FAIL" if not c.passed else "")
            lines.append(f"  {c.onnx_name:<{width}}  {c.op:<16} {c.max_abs:9.2e} {c.max_rel:9.2e} {c.cosine:10.7f} "
                         f"{c.bound:9.2e} {c.ratio:8.2f}{mark}")
        if divergence is not None:
            lines.append(f"first divergence: ONNX value '{divergence.onnx_name}' (node '{divergence.node}', "
                         f"{divergence.op} over {', '.join(divergence.covers) or 'nothing'}): error "
                         f"{divergence.max_abs:.2e}, {divergence.ratio:.0f}x its bound {divergence.bound:.2e}; its "
                         f"inputs arrived with error {divergence.input_error:.2e}")
        elif not self.error <= self.tolerance and not self.tolerance_given:
            lines.append("every layer is within its bound on its own: the end-to-end error is float32 rounding "
                         "compounding with depth")
        return lines


def node_tolerance(node: Node) -> float:
    """The bound for the element type the node computes in (float32's for integer results), or the
    looser one of the conv algorithm it was compiled with (Winograd, FFT)."""
    dtype = node.outputs[0].type.dtype
    return tolerance(dtype if dtype in DTYPE_TOLERANCE else DType.FLOAT32, getattr(node.attrs, "algorithm", None))


def agreement(ours: Sequence[Mapping[str, np.ndarray]], theirs: Sequence[Mapping[str, np.ndarray]]) -> Agreement | None:
    """Top-1 and top-5 agreement when the model is a classifier: one output, shaped [N, classes]."""
    if len(ours[0]) != 1:
        return None
    (name,) = ours[0]
    if np.ndim(ours[0][name]) != 2 or np.shape(ours[0][name])[1] < 2:
        return None
    mine = np.concatenate([np.asarray(o[name], np.float64) for o in ours])
    peer = np.concatenate([np.asarray(t[name], np.float64) for t in theirs])
    best = np.argmax(peer, axis=1)
    top1 = float(np.mean(np.argmax(mine, axis=1) == best))
    top5 = None
    if mine.shape[1] >= 5:
        five = np.argsort(-mine, axis=1, kind="stable")[:, :5]
        top5 = float(np.mean(np.any(five == best[:, None], axis=1)))
    return Agreement(top1, top5, len(mine))


def _errors(ours: Sequence[Mapping[str, np.ndarray]], theirs: Sequence[Mapping[str, np.ndarray]], vs: str
            ) -> dict[str, tuple[float, tuple[int, ...]]]:
    """Each output's worst error over the sets."""
    if set(ours[0]) != set(theirs[0]):
        raise ModelError(f"the compiled model gives outputs {sorted(ours[0])} but {vs} gives {sorted(theirs[0])}; "
                         "compare runs of the same model")
    return {name: (max(relative_error(o[name], t[name]) for o, t in zip(ours, theirs)), tuple(np.shape(theirs[0][name])))
            for name in ours[0]}


def judge_runs(compiled: CompiledModel, graph: Graph, sets: Sequence[InputSet],
               ours: Sequence[Mapping[str, np.ndarray]], theirs: Sequence[Mapping[str, np.ndarray]],
               vs: str = "reference", per_layer: bool = False, given_tolerance: float | None = None) -> Validation:
    """`compiled` (built from `graph`) gave `ours` and the peer `theirs`, one each per input set."""
    outputs = _errors(ours, theirs, vs)
    # The loosest node in the compiled graph bounds what its outputs can promise, unless the user says.
    bound = given_tolerance if given_tolerance is not None else \
        max((node_tolerance(n) for n in compiled.graph.nodes), default=tolerance(DType.FLOAT32))
    error = max((e for e, _ in outputs.values()), default=0.0)
    result = Validation(error <= bound, error, bound, str(compiled.target), compiled.provenance.pipeline,
                        compiled.provenance.precision, vs, len(sets), outputs, given_tolerance is not None,
                        agreement(ours, theirs), model=compiled)
    if per_layer or not (result.passed or result.tolerance_given):
        result.layers = list(compare_layers(graph, compiled.graph, compiled.run_node, sets[0]))
        layers_pass = result.first_divergence is None
        result.passed = (result.passed if per_layer else math.isfinite(error)) and layers_pass
    return result


def judge(compiled: CompiledModel, graph: Graph, inputs: Mapping[str, np.ndarray]) -> Validation:
    """`compiled` (built from `graph`) against `graph`'s float64 reference on one input set."""
    gold = run_reference(graph, inputs, dtype=DType.FLOAT64)
    return judge_runs(compiled, graph, [dict(inputs)], [compiled.run(inputs)], [gold])


@dataclass(frozen=True)
class ValidateOptions:
    """What validate compiles and compares with; see the module docstring."""

    target: str | None = None
    pipeline: str = "O3"
    precision: str = "fp32"
    keep_fp32: tuple[str, ...] = ()
    vs: Peer = Peer(PeerKind.REFERENCE)
    per_layer: bool = False
    tolerance: float | None = None
    memory_limit: int | str | None = None
    save_outputs: str | None = None
    load_outputs: str | None = None


def validate(graph: Graph, options: ValidateOptions = ValidateOptions(), sets: Sequence[InputSet] | None = None,
             onnx_model: Callable[[], onnx.ModelProto] | None = None, source: str | None = None) -> Validation:
    """Compile `graph` as `options` say and judge it on `sets` (one standard-normal set by default).

    The float64 reference (end to end, or layer by layer) must fit `memory_limit` (as `cnncompile.compile`
    takes it): its activations take twice float32's bytes. `onnx_model` gives the ONNX form onnxruntime and
    OpenVINO run (the graph exported, by default); `source` names the model in a saved-outputs file."""
    from cnncompile.frontends.onnx_export import to_onnx
    from cnncompile.tools.inputs import random_sets

    specs = input_specs(graph)
    if options.load_outputs:
        if sets is not None:
            raise ModelError("--load-outputs replays the inputs saved with the outputs: drop the other input options")
        saved = load_run(options.load_outputs)
        sets = [conform(specs, s, f"--load-outputs '{options.load_outputs}'") for s in saved.inputs]
        theirs, vs = saved.outputs, f"{options.load_outputs} ({saved.model})"
    else:
        sets = list(sets) if sets is not None else random_sets(specs)
        vs, theirs = str(options.vs), None
    if options.vs.kind is PeerKind.REFERENCE or options.per_layer:
        host_limit(options.memory_limit).check(estimate_memory(graph, compute=DType.FLOAT64),
                                               f"running graph '{graph.name}' on the float64 reference")
    compiled = compile_model(graph, options.target, options.pipeline, memory_limit=options.memory_limit,
                             precision=options.precision, keep_fp32=options.keep_fp32)
    if theirs is None:
        run = peer_runner(options.vs, graph, onnx_model or (lambda: to_onnx(graph)), options.precision,
                          options.memory_limit)
        theirs = [run(s) for s in sets]
    ours = [compiled.run(s) for s in sets]
    if options.save_outputs:
        save_run(options.save_outputs, source or graph.name, sets, ours)
    return judge_runs(compiled, graph, sets, ours, theirs, vs, options.per_layer, options.tolerance)
