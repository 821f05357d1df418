"""The `select-conv-algorithms` pass: each conv computed by its cheapest way on the target.

Every Conv becomes a FusedConv (a zero bias where it had none, no activation), so that one
op carries the choice; every FusedConv then gets the algorithm, layout and register tile
of its cheapest candidate (candidates.py): the fastest measured one when a tuning cache
holds the workload, else the cost model's (cost.py). A `Choice` per conv records the
decision, every alternative with its estimated or measured seconds, and why each excluded
algorithm does not apply: `cnncompile compile --explain` prints them.

The layout chosen here is the conv's local preference. So that the graph stays valid for
the passes after it (and runnable without them), a conv that writes another layout than
NCHW gets a LayoutTransform back to NCHW after it, and its residual input one into its
layout before it; `assign-layouts` then chooses layouts for the whole graph, keeping the
conv's preference where that saves transforms, and cancels the transform pairs.

`assign-layouts` may give a conv another layout than it chose (a whole chain takes one
kind of layout, each value the block its channels allow), so a compile for a target runs
the pass again after it with `keep_layouts`: each conv keeps the layout it was given and
re-chooses algorithm and tile among the candidates in that layout, measured or costed, so
what `--explain` reports as chosen is what is built. A conv whose input already arrives in
a stored layout is treated so too, and running the pipeline twice changes nothing.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec, why_not, why_not_layout
from cnncompile.backends.tvm.plan import ConvPlan
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ir.types import TensorType
from cnncompile.ops.conv import Conv
from cnncompile.ops.fused import FusedConv, FusedConvAttrs, conv_attrs, residual_of
from cnncompile.ops.layout import LayoutTransform, LayoutTransformAttrs
from cnncompile.ops.registry import attr_dict
from cnncompile.passes.rewrite import RewriteLog
from cnncompile.selection.candidates import Candidate, apply_candidate, candidates, candidates_in, plan_of
from cnncompile.selection.cost import Estimate, estimate
from cnncompile.selection.tuning_cache import Measured, TuningCache

if TYPE_CHECKING:
    from cnncompile.backends.tvm.target import TargetSpec

ALL = frozenset(ConvAlgorithm)


class ChoiceSource(enum.Enum):
    """Where a choice's seconds come from."""

    COST_MODEL = "cost model"
    MEASURED = "measured"

    def __str__(self) -> str:
        return self.value


Lookup = Callable[[ConvSpec], Measured | None]


@dataclass(frozen=True)
class Choice:
    """How one conv is computed and why: the chosen candidate, each alternative's seconds, the exclusions."""

    node: str
    spec: ConvSpec
    chosen: Candidate
    source: ChoiceSource
    alternatives: tuple[tuple[Candidate, float], ...]
    excluded: tuple[tuple[str, str], ...]  # (algorithm or candidate, why it was not considered)

    def as_dict(self) -> dict:
        return {"node": self.node, "workload": str(self.spec), "chosen": str(self.chosen), "source": self.source.value,
                "alternatives": [{"candidate": str(c), "seconds": s} for c, s in self.alternatives],
                "excluded": [{"what": what, "why": why} for what, why in self.excluded]}


@dataclass
class SelectionLog(RewriteLog):
    """The pass's RewriteLog, with the choice made for each conv (for --explain)."""

    choices: list[Choice] = field(default_factory=list)


def _offered(node: Node, spec: ConvSpec, target: TargetSpec, keep_layouts: bool
             ) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """The candidates for `node`, and those ruled out by its layout: all of them, or, with `keep_layouts`
    or once its input arrives in a stored layout (the layouts were assigned before; see the module's
    docstring), those in the conv's own layout, the others' defaults listed as ruled out."""
    offered = candidates(spec, target)
    if not keep_layouts and node.inputs[0].type.layout is None:
        return offered, []
    keep = node.outputs[0].type.layout
    why = f"assign-layouts stores this conv's output as {keep or 'NCHW'}"
    return candidates_in(keep, spec, target), [(str(c), why) for c in offered if c.layout != keep and not c.tile]


def _plan_here(node: Node, graph: Graph, spec: ConvSpec, c: Candidate, target: TargetSpec) -> ConvPlan | str:
    """The kernel `c` builds for `node` where it stands (its input's layout, its weights constant or not),
    or why `node`'s surroundings rule it out: a layout it cannot read or write, weights it cannot take."""
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    reason = why_not_layout(c.algorithm, c.layout, x.type, y.type.shape)
    return reason if reason is not None else plan_of(c, spec, target, x.type.layout, graph.is_constant(w))


def choose(node: Node, graph: Graph, target: TargetSpec, lookup: Lookup | None = None,
           algorithms: Collection[ConvAlgorithm] = ALL, keep_layouts: bool = False) -> Choice:
    """The candidate `node` (a Conv or FusedConv of `graph`) should compute by on `target`, among `algorithms`
    (with `keep_layouts`, in the layout its output has).

    `direct` applies to every conv, so leaving it out of `algorithms` never leaves a conv without one.
    """
    x, w = node.inputs[0], node.inputs[1]
    spec = ConvSpec.of(x.type, w.type, **attr_dict(conv_attrs(node.attrs)))
    excluded = [(a.value, reason) for a in ConvAlgorithm if (reason := why_not(a, spec)) is not None]
    excluded += [(a.value, "the pipeline leaves it out (option `algorithms`)") for a in ConvAlgorithm
                 if a not in algorithms and a is not ConvAlgorithm.DIRECT and why_not(a, spec) is None]
    usable: dict[Candidate, ConvPlan] = {}
    offered, elsewhere = _offered(node, spec, target, keep_layouts)
    excluded += elsewhere
    for c in offered:
        if c.algorithm not in algorithms and c.algorithm is not ConvAlgorithm.DIRECT:
            continue
        plan = _plan_here(node, graph, spec, c, target)
        if isinstance(plan, str):
            excluded.append((str(c), plan))
        else:
            usable[c] = plan
    measured = lookup(spec) if lookup is not None else None
    timed = sorted(((c, s) for c, s in measured.results.items() if c in usable), key=lambda cs: cs[1]) \
        if measured is not None else []
    if timed:
        return Choice(node.name, spec, timed[0][0], ChoiceSource.MEASURED, tuple(timed), tuple(excluded))
    estimates = sorted((estimate(c, plan, target) for c, plan in usable.items()), key=lambda e: e.seconds)
    return Choice(node.name, spec, estimates[0].candidate, ChoiceSource.COST_MODEL,
                  tuple((e.candidate, e.seconds) for e in estimates), tuple(excluded))


def ranked(offered: Collection[Candidate], spec: ConvSpec, target: TargetSpec) -> list[Estimate]:
    """The cost model's estimates of the `offered` candidates for the workload (X in each candidate's layout,
    constant weights, as tuning measures them), cheapest first."""
    plans = {c: plan_of(c, spec, target) for c in offered}
    return sorted((estimate(c, plan, target) for c, plan in plans.items() if not isinstance(plan, str)),
                  key=lambda e: e.seconds)


def _fused(node: Node, graph: Graph, candidate: Candidate) -> tuple[list[Value], FusedConvAttrs]:
    """The FusedConv inputs and attributes computing `node` by `candidate`."""
    inputs = list(node.inputs)
    if node.op is Conv:
        attrs = FusedConvAttrs(**attr_dict(conv_attrs(node.attrs)))
        if len(inputs) < 3:
            w = inputs[1].type
            inputs.append(graph.add_constant(np.zeros(w.shape[0], w.dtype.numpy), f"{node.name}_bias"))
    else:
        attrs = node.attrs
    return inputs, apply_candidate(attrs, candidate)


def _rewritten(node: Node, graph: Graph, candidate: Candidate) -> list[Node]:
    """`node` as a FusedConv by `candidate`, with the LayoutTransforms that keep its readers and residual valid."""
    inputs, attrs = _fused(node, graph, candidate)
    (out,) = node.outputs
    layout = candidate.layout
    before: list[Node] = []
    z = residual_of(inputs)
    if z is not None and z.type.layout != layout:
        stored = Value(graph.fresh_name(f"{z.name}_{layout or 'nchw'}"), TensorType(z.type.shape, z.type.dtype, layout),
                       z.origin)
        before.append(Node(LayoutTransform, [z], [stored], LayoutTransformAttrs(layout),
                           graph.fresh_name(f"{node.name}_residual_layout", "node")))
        inputs[FusedConv.operand_index("Z")] = stored
    (y_type,) = FusedConv.infer([v.type for v in inputs], attrs)
    if y_type.layout == out.type.layout:
        out.type = y_type
        return [*before, Node(FusedConv, inputs, [out], attrs, node.name)]
    y = Value(graph.fresh_name(f"{out.name}_{layout or 'nchw'}"), y_type, out.origin)
    back = Node(LayoutTransform, [y], [out], LayoutTransformAttrs(out.type.layout),
                graph.fresh_name(f"{node.name}_layout", "node"))
    return [*before, Node(FusedConv, inputs, [y], attrs, node.name), back]


def select_conv_algorithms(graph: Graph, target: TargetSpec, lookup: Lookup | None = None,
                           algorithms: Collection[ConvAlgorithm] = ALL,
                           keep_layouts: bool = False) -> tuple[Graph, SelectionLog]:
    """Rewrite `graph` in place: every conv a FusedConv computing by its chosen candidate (with
    `keep_layouts`, the best in the layout each conv's output has: after assign-layouts)."""
    log = SelectionLog()
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op not in (Conv, FusedConv):
            nodes.append(node)
            continue
        choice = choose(node, graph, target, lookup, algorithms, keep_layouts)
        log.choices.append(choice)
        rewritten = _rewritten(node, graph, choice.chosen)
        if node.op is Conv or len(rewritten) > 1 or rewritten[0].attrs != node.attrs:
            log.fired[f"{choice.chosen.algorithm.value}"] += 1
        nodes += rewritten
    graph.nodes = nodes
    return graph, log


def cache_lookup(path: str, target: TargetSpec) -> Lookup:
    """The measured record of a workload on `target` in the tuning cache at `path` (tuning_cache.py).

    The passes of one pipeline that read the same file share one cache, which re-reads the file when it
    changes and reports a damaged one once.
    """
    cache = _opened(os.path.abspath(path))
    return lambda spec: cache.lookup(spec, target)


@functools.cache
def _opened(path: str) -> TuningCache:
    return TuningCache(path)
