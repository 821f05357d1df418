"""`cnncompile compile --explain`: per conv, what was chosen, from what, and why, and what was built.

The choices come from the select-conv-algorithms pass (its SelectionLog; where it ran twice,
around assign-layouts, the later choice); what was built comes from the plans the backend
built each conv's kernel from (backends/tvm/plan.py), so a difference between the two is
shown, never hidden:

    layer1.0.conv1  1x64x56x56 -> 64 k3x3
      chosen  direct/NCHW8c (cost model)  est. 4.407 ms
      also    direct/NHWC 5.659 ms, direct/NCHW 6.531 ms, winograd_f4x3/NCHW 7.012 ms, ...
      not     gemm_1x1: gemm_1x1 needs a 1x1 kernel, stride 1 and no padding
      not     depthwise: depthwise needs one input channel per group (group 1, 64 channels)
"""

from __future__ import annotations

from collections.abc import Sequence

from cnncompile.backends.tvm.module import NodeKernel
from cnncompile.passes.manager import PipelineRun
from cnncompile.selection.select import Choice, ChoiceSource, SelectionLog

# Alternatives printed per conv in text (all of them go to JSON).
SHOWN_ALTERNATIVES = 6


def choices_of(run: PipelineRun) -> list[Choice]:
    """Each conv's choice in a pipeline run; where the pass ran twice, the later choice."""
    by_node = {c.node: c for r in run.records if isinstance(r.log, SelectionLog) for c in r.log.choices}
    return list(by_node.values())


def built_kernels(kernels: Sequence[NodeKernel] | None) -> dict[str, str]:
    """The kernel each conv was built as (algorithm/layout/tile, from its plan), by node name."""
    return {k.node: k.plan.describe() for k in kernels or () if k.plan is not None}


def _seconds(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.2f} s"


def format_choices(choices: Sequence[Choice], kernels: Sequence[NodeKernel] | None) -> str:
    if not choices:
        return "no conv algorithm was selected (the pipeline has no select-conv-algorithms pass, or no convs)"
    final = built_kernels(kernels)
    lines = []
    for c in choices:
        seconds = dict(c.alternatives)
        estimate = "est." if c.source is ChoiceSource.COST_MODEL else "measured"
        lines.append(f"{c.node}  {c.spec}")
        lines.append(f"  chosen  {c.chosen} ({c.source})  {estimate} {_seconds(seconds[c.chosen])}")
        built = final.get(c.node)
        if built is not None and built != str(c.chosen):
            lines.append(f"  built   {built} (not what was chosen: a pass after the choice changed it)")
        # the model cannot tell tiles apart much: their variants are left to JSON (and to tuning)
        others = [f"{a} {_seconds(s)}" for a, s in c.alternatives
                  if a != c.chosen and not (a.tile and c.source is ChoiceSource.COST_MODEL)]
        if others:
            more = len(others) - SHOWN_ALTERNATIVES
            shown = ", ".join(others[:SHOWN_ALTERNATIVES])
            lines.append(f"  also    {shown}" + (f", +{more} more" if more > 0 else ""))
        for what, why in c.excluded:
            lines.append(f"  not     {what}: {why}")
    return "\n".join(lines)


def choices_as_json(choices: Sequence[Choice], kernels: Sequence[NodeKernel] | None) -> list[dict]:
    plans = {k.node: k.plan for k in kernels or () if k.plan is not None}
    return [{**c.as_dict(), "built": plans[c.node].describe() if c.node in plans else None,
             "plan": plans[c.node].as_dict() if c.node in plans else None} for c in choices]
