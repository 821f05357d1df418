"""What every cnncompile HTML report and SVG picture is drawn with: the graph picture and the page.

A graph picture is SVG drawn here: each node sits in the layer of its longest path from the
inputs, so a chain reads top to bottom and a residual branch beside it; fused nodes are labelled
with their epilogue and outlined, with the original ops they stand for (ops.fused.expand) written
under the label. Given per-layer results (tools.layers), nodes are filled by how many of its
error bounds each layer is off instead of by op family. The reports of compare
(report_compare.py), validate (report_validate.py) and profile (profile_report.py) and
`cnncompile show` draw with these functions and the same page style.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass

from cnncompile.ir.graph import Graph, Node
from cnncompile.ops.fused import Activation, ChannelAffine, FusedConv, expand, residual_of
from cnncompile.tools.layers import SAFETY

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 20, 16, 14, 10
FUSED_LINE = 12  # the extra height of a row that holds a fused node: the line of its original ops
FUSED_OPS = (FusedConv, ChannelAffine)

# Fill colour by op family; anything else is grey.
COLOURS = {
    "Conv": "#9ecae1", "ConvTranspose": "#9ecae1", "FusedConv": "#3182bd", "Gemm": "#9ecae1", "MatMul": "#9ecae1",
    "BatchNormalization": "#fdae6b", "ChannelAffine": "#e6550d", "Relu": "#a1d99b", "Clip": "#a1d99b",
    "LeakyRelu": "#a1d99b", "Sigmoid": "#a1d99b", "HardSwish": "#a1d99b", "HardSigmoid": "#a1d99b",
    "Gelu": "#a1d99b", "Tanh": "#a1d99b", "MaxPool": "#bcbddc", "AveragePool": "#bcbddc",
    "GlobalAveragePool": "#bcbddc", "Concat": "#fee391", "Add": "#d9d9d9", "Sum": "#d9d9d9", "Mul": "#d9d9d9",
}
LIGHT_TEXT = {"FusedConv", "ChannelAffine"}

# Fill by how many bounds off a layer is (LayerCheck.ratio), up to each limit; beyond SAFETY it fails.
ERROR_SCALE = ((0.1, "#edf8e9"), (1.0, "#a1d99b"), (4.0, "#fdd49e"), (SAFETY, "#fc8d59"), (math.inf, "#d7301f"))
FAILED = ERROR_SCALE[-1][1]
UNCHECKED = "#f0f0f0"  # a node no layer check covers (no float output, or nothing it stands for)


def error_colour(ratio: float) -> str:
    """The fill of a layer `ratio` bounds off; NaN (a non-finite output) fails like the largest."""
    return next((colour for limit, colour in ERROR_SCALE if ratio <= limit), FAILED)


def node_label(node: Node) -> str:
    """The op, with a conv's kernel size and a fused node's epilogue: 'FusedConv 3x3 +res Relu'."""
    label = node.op.name
    kernel = node.inputs[1].type.shape[2:] if node.op.name in ("Conv", "FusedConv") else ()
    if kernel:
        label += " " + "x".join(map(str, kernel))
    if node.op is FusedConv and residual_of(node.inputs) is not None:
        label += " +res"
    activation = getattr(node.attrs, "activation", Activation.NONE)
    if activation is not Activation.NONE:
        label += f" {activation.value}"
    return label


def original_ops(node: Node) -> list[str]:
    """The standard ops a fused node stands for, in order ('Conv', 'Add', 'Relu'); [] for any other node."""
    return [n.op.name for n in expand(node, lambda base: base)] if node.op in FUSED_OPS else []


@dataclass(frozen=True)
class _Box:
    x: float
    y: float


def _layout(graph: Graph, box_h: int) -> dict[Node, _Box]:
    producer = {out: node for node in graph.nodes for out in node.outputs}
    depth: dict[Node, int] = {}
    rows: dict[int, int] = {}
    boxes = {}
    for node in graph.nodes:
        depth[node] = 1 + max((depth[producer[v]] for v in node.inputs if v in producer), default=-1)
        column = rows.get(depth[node], 0)
        rows[depth[node]] = column + 1
        boxes[node] = _Box(MARGIN + column * (BOX_W + GAP_X), MARGIN + depth[node] * (box_h + GAP_Y))
    return boxes


def graph_svg(graph: Graph, errors: Mapping[str, float] | None = None) -> str:
    """The graph as one SVG element; each node's <title> holds its name and output shape (hover to read).

    With `errors` (node name -> how many bounds off it is), nodes are filled by that (`error_colour`)."""
    box_h = BOX_H + (FUSED_LINE if any(n.op in FUSED_OPS for n in graph.nodes) else 0)
    boxes = _layout(graph, box_h)
    producer = {out: node for node in graph.nodes for out in node.outputs}
    outputs = set(graph.outputs)
    width = max((b.x for b in boxes.values()), default=0) + BOX_W + MARGIN
    height = max((b.y for b in boxes.values()), default=0) + box_h + MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'font-family="sans-serif" font-size="11">']
    for node, box in boxes.items():
        for value in node.inputs:
            source = producer.get(value)
            if source is not None:
                start = boxes[source]
                parts.append(f'<line x1="{start.x + BOX_W / 2:.0f}" y1="{start.y + box_h:.0f}" '
                             f'x2="{box.x + BOX_W / 2:.0f}" y2="{box.y:.0f}" stroke="#888"/>')
    for node, box in boxes.items():
        if errors is None:
            colour = COLOURS.get(node.op.name, "#f0f0f0")
            text = "#fff" if node.op.name in LIGHT_TEXT else "#000"
            judged = ""
        else:
            ratio = errors.get(node.name)
            colour = UNCHECKED if ratio is None else error_colour(ratio)
            text = "#fff" if colour == FAILED else "#000"
            judged = "" if ratio is None else f"; error {ratio:.2g}x its bound"
        stroke = ' stroke="#000" stroke-width="2"' if any(o in outputs for o in node.outputs) else ' stroke="#666"'
        shape = "x".join(map(str, node.outputs[0].type.shape))
        originals = original_ops(node)
        stands_for = f" = {' + '.join(originals)}" if originals else ""
        parts.append(f'<g><title>{html.escape(node.name)}: {html.escape(shape)}{html.escape(stands_for + judged)}'
                     '</title>')
        if originals:  # the fused region: a dashed outline around the node, its original ops inside
            parts.append(f'<rect class="fused" x="{box.x - 3:.0f}" y="{box.y - 3:.0f}" width="{BOX_W + 6}" '
                         f'height="{box_h + 6}" rx="6" fill="none" stroke="#e6550d" stroke-dasharray="4 2"/>')
        parts.append(f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{BOX_W}" height="{box_h}" rx="4" '
                     f'fill="{colour}"{stroke}/>'
                     f'<text x="{box.x + BOX_W / 2:.0f}" y="{box.y + 14:.0f}" text-anchor="middle" fill="{text}">'
                     f'{html.escape(node_label(node))}</text>')
        if originals:
            parts.append(f'<text x="{box.x + BOX_W / 2:.0f}" y="{box.y + 14 + FUSED_LINE:.0f}" text-anchor="middle" '
                         f'font-size="9" fill="{text}">{html.escape(" + ".join(originals))}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


STYLE = """body { font-family: sans-serif; margin: 1.5em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
td.name, th.name { text-align: left; }
.graphs { display: flex; gap: 1em; align-items: flex-start; }
.graph { max-height: 85vh; overflow: auto; border: 1px solid #ccc; padding: 0 0.5em; }"""


def page(title: str, body: str) -> str:
    """A whole self-contained HTML page: no scripts, no fetches, the style inline."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
{STYLE}
</style></head><body>
<h1>{html.escape(title)}</h1>
{body}
</body></html>
"""
