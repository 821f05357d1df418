"""The HTML page of `cnncompile profile --html`: the per-kernel table, a bar chart of each kernel's time
beside the end-to-end latency and the graph as built (fused regions outlined), in the compare report's
style (tools/report.py), self-contained."""

from __future__ import annotations

import html
import os

from cnncompile.fileio import write_atomically
from cnncompile.ir.graph import Graph
from cnncompile.tools.profile import Profile
from cnncompile.tools.report import graph_svg, page

COLUMNS = ("kernel", "op", "nodes", "calls", "ms", "share", "GFLOP/s", "% of peak", "GB/s", "% of peak")


def latency_svg(p: Profile) -> str:
    """Horizontal bars: every kernel's time in one inference (all its calls), then the kernels' sum and
    the end-to-end VM latency on the same scale."""
    rows = [(k.spec.symbol, k.seconds * 1e3, "#3182bd") for k in p.kernels]
    rows += [("sum of kernels", p.total_seconds * 1e3, "#08519c"), ("end to end (VM)", p.end_to_end.median_ms, "#e6550d")]
    label_w, bar_w, row_h = 170, 420, 22
    top = max(ms for _, ms, _ in rows)
    scale = bar_w / top if top > 0 else 0
    parts = [f'<svg class="chart latency" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 110}" '
             f'height="{row_h * len(rows) + 10}" font-family="sans-serif" font-size="12">']
    for i, (label, ms, colour) in enumerate(rows):
        y = 5 + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{html.escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{ms * scale:.1f}" height="{row_h - 7}" fill="{colour}"/>'
                     f'<text x="{label_w + ms * scale + 6:.1f}" y="{y + 14}">{ms:.4f} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(p: Profile) -> str:
    head = "".join(f'<th{" class=name" if i < 3 else ""}>{c}</th>' for i, c in enumerate(COLUMNS))
    body = []
    for k in p.kernels:
        cells = (k.spec.symbol, k.spec.op, ", ".join(k.spec.nodes), str(k.spec.calls), f"{k.seconds * 1e3:.4f}",
                 f"{p.share(k):.1%}", f"{k.gflops:.2f}", f"{k.gflops * 1e9 / p.peak_flops:.1%}", f"{k.gbps:.2f}",
                 f"{k.gbps * 1e9 / p.peak_bandwidth:.1%}")
        body.append("<tr>" + "".join(f'<td{" class=name" if i < 3 else ""}>{html.escape(c)}</td>'
                                     for i, c in enumerate(cells)) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(p: Profile, graph: Graph) -> str:
    """The page for profile `p` of a build whose optimized graph is `graph`."""
    summary = (f"kernels {p.total_seconds * 1e3:.4f} ms in all, end to end {p.end_to_end} on the Relax VM. "
               f"Peaks are the cost model's nominal estimates for {p.target}, not measured: "
               f"{p.peak_flops / 1e9:.0f} GFLOP/s, {p.peak_bandwidth / 1e9:.0f} GB/s.")
    return page(f"cnncompile profile: {p.model} on {p.target}", f"""<p>{html.escape(summary)}</p>
<h2>Latency per kernel</h2>
{latency_svg(p)}
<h2>Kernels, slowest first</h2>
{_table(p)}
<h2>The graph as built</h2>
{graph_svg(graph)}""")


def write_html(path: str | os.PathLike, p: Profile, graph: Graph) -> None:
    text = render_html(p, graph).encode()
    write_atomically(path, lambda handle: handle.write(text))
