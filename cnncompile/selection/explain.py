"""`cnncompile compile --explain`: per conv, what was chosen, from what, and why.

The choices come from the select-conv-algorithms pass (its SelectionLog); the final graph
says what the passes after it (assign-layouts) made of them, which may differ in layout:

    layer1.0.conv1  1x64x56x56 -> 64 k3x3
      chosen  direct/NCHW8c (cost model)  est. 4.407 ms
      also    direct/NHWC 5.659 ms, direct/NCHW 6.531 ms, winograd_f4x3/NCHW 7.012 ms, ...
      not     gemm_1x1: gemm_1x1 needs a 1x1 kernel, stride 1 and no padding
      not     depthwise: depthwise needs one input channel per group (group 1, 64 channels)
"""

from __future__ import annotations

from collections.abc import Sequence

from cnncompile.ir.graph import Graph
from cnncompile.ops.fused import FusedConv
from cnncompile.passes.manager import PipelineRun
from cnncompile.selection.candidates import Candidate, of_attrs
from cnncompile.selection.select import COST_MODEL, Choice, SelectionLog

# Alternatives printed per conv in text (all of them go to JSON).
SHOWN_ALTERNATIVES = 6


def choices_of(run: PipelineRun) -> list[Choice]:
    """Each conv's choice in a pipeline run; where the pass ran twice, the later choice."""
    by_node = {c.node: c for r in run.records if isinstance(r.log, SelectionLog) for c in r.log.choices}
    return list(by_node.values())


def final_candidates(graph: Graph) -> dict[str, Candidate]:
    """How each FusedConv of the final graph computes, by node name."""
    return {n.name: of_attrs(n.attrs) for n in graph.nodes if n.op is FusedConv}


def _seconds(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.2f} s"


def format_choices(choices: Sequence[Choice], graph: Graph) -> str:
    if not choices:
        return "no conv algorithm was selected (the pipeline has no select-conv-algorithms pass, or no convs)"
    final = final_candidates(graph)
    lines = []
    for c in choices:
        seconds = dict(c.alternatives)
        estimate = "est." if c.source == COST_MODEL else "measured"
        lines.append(f"{c.node}  {c.spec}")
        lines.append(f"  chosen  {c.chosen} ({c.source})  {estimate} {_seconds(seconds[c.chosen])}")
        built = final.get(c.node)
        if built is not None and built != c.chosen:
            lines.append(f"  built   {built} (the layout pass, assign-layouts, chose this layout for the whole graph)")
        # the model cannot tell tiles apart much: their variants are left to JSON (and to tuning)
        others = [f"{a} {_seconds(s)}" for a, s in c.alternatives
                  if a != c.chosen and not (a.tile and c.source == COST_MODEL)]
        if others:
            more = len(others) - SHOWN_ALTERNATIVES
            shown = ", ".join(others[:SHOWN_ALTERNATIVES])
            lines.append(f"  also    {shown}" + (f", +{more} more" if more > 0 else ""))
        for what, why in c.excluded:
            lines.append(f"  not     {what}: {why}")
    return "\n".join(lines)


def choices_as_json(choices: Sequence[Choice], graph: Graph) -> list[dict]:
    final = final_candidates(graph)
    return [{**c.as_dict(), "built": str(final[c.node]) if c.node in final else None} for c in choices]
