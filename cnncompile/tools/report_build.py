"""One compiled build's part of an HTML report: its error per layer and latency per kernel as bar
charts, and the table of the passes that made it.

The errors are tools.layers' checks (each compiled node on gold float64 inputs, judged against its
bound), drawn as how many bounds each layer is off on a log scale, with the line beyond which a layer
fails; the latencies are tools.profile's (each kernel timed alone), drawn by profile_report's chart.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.compiled import CompiledModel
from cnncompile.ir.graph import Graph
from cnncompile.passes.manager import PassRecord
from cnncompile.tools.layers import SAFETY, LayerCheck, compare_layers
from cnncompile.tools.profile import Profile, profile
from cnncompile.tools.profile_report import latency_svg as kernel_latency_svg
from cnncompile.tools.report import ERROR_SCALE, error_colour

# A report's profile is a glance beside everything else on the page; `cnncompile profile` measures longer.
PROFILE_REPEAT, PROFILE_MIN_REPEAT_MS = 3, 5
LOWEST_RATIO = 1e-3  # where the error chart's log axis starts: anything smaller reads as no error


@dataclass(frozen=True)
class BuildDetail:
    """What a report shows of one compiled build beside its graph."""

    label: str
    layers: tuple[LayerCheck, ...]
    profile: Profile | None
    records: tuple[PassRecord, ...]


def measure_build(label: str, original: Graph, model: CompiledModel, inputs: Mapping[str, np.ndarray],
                  records: Iterable[PassRecord], layers: Sequence[LayerCheck] | None = None) -> BuildDetail:
    """`model`'s layers checked on `inputs` against `original` (unless `layers` already holds them) and its
    kernels timed; a build with no kernel table (TVM's default path) has no latency per kernel."""
    checks = tuple(layers) if layers is not None else \
        tuple(compare_layers(original, model.graph, model.run_node, inputs))
    timed = None if model.kernel_specs is None else profile(model, label, PROFILE_REPEAT, PROFILE_MIN_REPEAT_MS)
    return BuildDetail(label, checks, timed, tuple(records))


def errors_by_node(layers: Iterable[LayerCheck]) -> dict[str, float]:
    """Each compiled node's worst ratio to its bound, for graph_svg's colouring of the graph after."""
    worst: dict[str, float] = {}
    for check in layers:
        worst[check.node] = _worse(worst.get(check.node), check.ratio)
    return worst


def errors_by_original(layers: Iterable[LayerCheck]) -> dict[str, float]:
    """The same on the imported graph: each original node takes the ratio of the compiled node computing it."""
    worst: dict[str, float] = {}
    for check in layers:
        for name in check.covers:
            worst[name] = _worse(worst.get(name), check.ratio)
    return worst


def _worse(seen: float | None, ratio: float) -> float:
    """NaN (a non-finite output) counts as the worst of all."""
    if seen is None or math.isnan(ratio):
        return ratio
    return seen if math.isnan(seen) else max(seen, ratio)


def legend_svg() -> str:
    """The error colours, each with the ratios it stands for."""
    cell, parts, low = 120, [], 0.0
    for i, (limit, colour) in enumerate(ERROR_SCALE):
        text = f"> {low:g}x bound (fails)" if math.isinf(limit) else f"{low:g}-{limit:g}x bound"
        parts.append(f'<rect x="{i * cell}" y="2" width="14" height="14" fill="{colour}" stroke="#666"/>'
                     f'<text x="{i * cell + 18}" y="13">{text}</text>')
        low = limit
    parts.append(f'<rect x="{len(ERROR_SCALE) * cell}" y="2" width="14" height="14" fill="#f0f0f0" stroke="#666"/>'
                 f'<text x="{len(ERROR_SCALE) * cell + 18}" y="13">not checked</text>')
    return (f'<svg class="legend" xmlns="http://www.w3.org/2000/svg" width="{(len(ERROR_SCALE) + 1) * cell}" '
            f'height="18" font-family="sans-serif" font-size="10">{"".join(parts)}</svg>')


NOT_CHECKED = "No layer was checked: only a compiled build is checked layer by layer."


def error_svg(layers: Sequence[LayerCheck], not_checked: str = NOT_CHECKED) -> str:
    """Horizontal bars, one per layer by its ONNX name: how many bounds off it is, on a log axis from
    LOWEST_RATIO, with a dashed line at SAFETY, beyond which it fails; the relative error beside it.
    With no layers, the `not_checked` sentence says why."""
    if not layers:
        return f"<p>{html.escape(not_checked)}</p>"
    label_w, bar_w, row_h, axis_h = 190, 420, 18, 18
    finite = [c.ratio for c in layers if math.isfinite(c.ratio)]
    high = max(SAFETY * 4, *finite)
    span = math.log10(high) - math.log10(LOWEST_RATIO)

    def x(ratio: float) -> float:
        clamped = high if not ratio <= high else max(ratio, LOWEST_RATIO)
        return label_w + bar_w * (math.log10(clamped) - math.log10(LOWEST_RATIO)) / span

    height = row_h * len(layers) + axis_h + 10
    parts = [f'<svg class="chart errors" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 170}" '
             f'height="{height}" font-family="sans-serif" font-size="11">']
    for i, check in enumerate(layers):
        y = 5 + i * row_h
        name = check.onnx_name if len(check.onnx_name) <= 28 else check.onnx_name[:27] + "…"
        parts.append(f'<g><title>{html.escape(check.onnx_name)} ({html.escape(check.op)}, node '
                     f'{html.escape(check.node)}): max abs {check.max_abs:.2e}, bound {check.bound:.2e}</title>'
                     f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{html.escape(name)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{x(check.ratio) - label_w:.1f}" '
                     f'height="{row_h - 5}" fill="{error_colour(check.ratio)}" stroke="#666"/>'
                     f'<text x="{x(check.ratio) + 5:.1f}" y="{y + 12}">{check.max_rel:.1e} ({check.ratio:.2g}x '
                     f'bound)</text></g>')
    bottom = 5 + row_h * len(layers)
    parts.append(f'<line x1="{x(SAFETY):.1f}" y1="2" x2="{x(SAFETY):.1f}" y2="{bottom}" stroke="#d7301f" '
                 f'stroke-dasharray="4 2"/><line x1="{label_w}" y1="{bottom}" x2="{label_w + bar_w}" y2="{bottom}" '
                 f'stroke="#000"/>')
    for decade in range(round(math.log10(LOWEST_RATIO)), math.floor(math.log10(high)) + 1):
        tick = x(10.0 ** decade)
        parts.append(f'<text x="{tick:.1f}" y="{bottom + 13}" text-anchor="middle" font-size="9">1e{decade}</text>')
    parts.append(f'<text x="{x(SAFETY) + 4:.1f}" y="{bottom + 13}" font-size="9" fill="#d7301f">fails beyond '
                 f'{SAFETY:g}x</text></svg>')
    return "".join(parts)


PASS_COLUMNS = ("pass", "ms", "nodes before", "nodes after", "rules fired", "change (float64)")


def passes_table(records: Sequence[PassRecord]) -> str:
    """One row per pass run: its time, the node count it left, what fired, and with --check-each-pass how
    far it moved the float64 outputs."""
    if not records:
        return "<p>No pass ran.</p>"
    head = "".join(f'<th{" class=name" if i in (0, 4) else ""}>{c}</th>' for i, c in enumerate(PASS_COLUMNS))
    rows = []
    for r in records:
        fired = ", ".join(f"{rule} x{count}" for rule, count in r.log.fired.items()) or "-"
        cells = (r.name, f"{r.seconds * 1e3:.2f}", str(r.nodes_before), str(r.nodes_after), fired,
                 "-" if r.error is None else f"{r.error:.1e}")
        rows.append("<tr>" + "".join(f'<td{" class=name" if i in (0, 4) else ""}>{html.escape(c)}</td>'
                                     for i, c in enumerate(cells)) + "</tr>")
    return f'<table class="passes"><tr>{head}</tr>{"".join(rows)}</table>'


def build_section(detail: BuildDetail, not_checked: str = NOT_CHECKED) -> str:
    """The build's charts and its passes, under one heading."""
    latency = "<p>No latency per kernel: only a build compiled by cnncompile has a kernel table.</p>" \
        if detail.profile is None \
        else kernel_latency_svg(detail.profile)
    return f"""<section class="build"><h2>{html.escape(detail.label)}</h2>
<h3>Error per layer (against the float64 reference, each layer on gold inputs)</h3>
{error_svg(detail.layers, not_checked)}
<h3>Latency per kernel</h3>
{latency}
<h3>Passes</h3>
{passes_table(detail.records)}</section>"""
