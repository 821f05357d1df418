"""The HTML report of `cnncompile compare`: one self-contained file, no scripts, no fetches.

It holds the comparison table, a bar chart of latency per build (median, with a whisker from min
to max), a picture of the graph each build leaves beside the imported one (filled by each layer's
error when the build was compiled), and for each build its error per layer, latency per kernel and
passes (report_build.py). Measuring those (`measure_builds`) is apart from drawing, so the page of
one comparison is drawn the same every time.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence

from cnncompile.compiled import CompiledModel
from cnncompile.fileio import write_atomically
from cnncompile.tools.compare import Comparison, format_comparison
from cnncompile.tools.report import graph_svg, page
from cnncompile.tools.report_build import BuildDetail, build_section, errors_by_node, legend_svg, measure_build


def measure_builds(comparison: Comparison) -> list[BuildDetail]:
    """Each build's layers checked and kernels timed where it was compiled; its passes either way."""
    details = []
    for r in comparison.results:
        label = f"{r.label} on {comparison.backend}"
        if isinstance(r.model, CompiledModel):
            details.append(measure_build(label, comparison.graph, r.model, comparison.inputs, r.run.records))
        else:
            details.append(BuildDetail(label, (), None, tuple(r.run.records)))
    return details


def latency_svg(comparison: Comparison) -> str:
    """Horizontal bars of median latency per build, with a min-max whisker."""
    timed = [r for r in comparison.results if r.latency is not None]
    if not timed:
        return "<p>No latency was measured (--runs 0).</p>"
    label_w, bar_w, row_h = 120, 420, 26
    top = max(r.latency.high for r in timed)
    scale = bar_w / top if top > 0 else 0
    parts = [f'<svg class="chart latency" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 130}" '
             f'height="{row_h * len(timed) + 10}" font-family="sans-serif" font-size="12">']
    for i, r in enumerate(timed):
        y, lat = 5 + i * row_h, r.latency
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{html.escape(r.label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{lat.median * scale:.1f}" height="{row_h - 8}" '
                     f'fill="#3182bd"/>'
                     f'<line x1="{label_w + lat.low * scale:.1f}" y1="{y + row_h / 2:.1f}" '
                     f'x2="{label_w + lat.high * scale:.1f}" y2="{y + row_h / 2:.1f}" stroke="#000"/>'
                     f'<text x="{label_w + lat.high * scale + 6:.1f}" y="{y + 15}">{lat.median * 1e3:.3g} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(comparison: Comparison, details: Sequence[BuildDetail] = ()) -> str:
    """The page; `details` (one per build, in order, from `measure_builds`) colour the graphs and add the
    per-build sections."""
    title = f"cnncompile compare: {comparison.model}"
    errors = [errors_by_node(d.layers) if d.layers else None for d in details] or [None] * len(comparison.results)
    pictures = [("imported", comparison.graph, None)] + [(r.label, r.graph, e)
                                                          for r, e in zip(comparison.results, errors, strict=True)]
    columns = "".join(f'<div class="graph"><h3>{html.escape(name)} ({len(g.nodes)} nodes)</h3>{graph_svg(g, e)}</div>'
                      for name, g, e in pictures)
    legend = f"<p>Compiled builds' nodes are filled by their error against its bound:</p>{legend_svg()}" \
        if any(e is not None for e in errors) else ""
    return page(title, f"""<h2>Builds</h2>
<pre>{html.escape(format_comparison(comparison))}</pre>
<h2>Latency on {html.escape(comparison.backend)}</h2>
{latency_svg(comparison)}
<h2>Graphs before and after</h2>
{legend}
<div class="graphs">{columns}</div>
{"".join(build_section(d) for d in details)}""")


def write_html(path: str | os.PathLike, comparison: Comparison, details: Sequence[BuildDetail] = ()) -> None:
    text = render_html(comparison, details).encode()
    write_atomically(path, lambda handle: handle.write(text))
