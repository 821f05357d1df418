"""Per-layer statistics of a graph, the seeds' VGG table generalised to any model.

For each node: its output shape, activation memory, learned parameters, multiply-adds
and receptive field; for the model: the same totals. Conventions follow published
figures, so a zoo model can be checked against its paper:

- activations count the elements of outputs that something reads (a Dropout mask or a
  LayerNorm's saved statistics are never materialised at inference);
- parameters are the learned constants; BatchNorm's running mean and variance are
  statistics, reported apart (torch's "buffers");
- multiply-adds are the dot products of convolutions and dense layers, the count papers
  quote; the arithmetic of normalisation, activation and pooling is in FLOPs only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ir.types import TensorType
from cnncompile.ops import conv, fused, linalg, norm
from cnncompile.tools.receptive_field import Field, receptive_fields

STATISTICS_INPUTS = {norm.BatchNormalization: frozenset({3, 4})}


@dataclass(frozen=True)
class LayerRow:
    name: str
    op: str
    output_shape: tuple[int, ...]
    activations: int
    activation_bytes: int
    parameters: int
    macs: int
    flops: int
    receptive_field: tuple[int, ...] | None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Totals:
    activations: int
    activation_bytes: int
    parameters: int
    statistics: int
    macs: int
    flops: int
    receptive_field: tuple[int, ...] | None


@dataclass(frozen=True)
class Summary:
    model: str
    inputs: list[LayerRow]
    layers: list[LayerRow]
    totals: Totals

    def as_dict(self) -> dict:
        return {"model": self.model, "inputs": [r.as_dict() for r in self.inputs],
                "layers": [r.as_dict() for r in self.layers], "totals": asdict(self.totals)}


def macs(node: Node) -> int:
    """Multiply-adds of the node's dot products (0 for ops that have none)."""
    ins = [v.type for v in node.inputs]
    out = node.outputs[0].type
    if node.op in (conv.Conv, fused.FusedConv):
        return out.numel * math.prod(ins[1].shape[1:])
    if node.op is conv.ConvTranspose:
        return ins[0].numel * math.prod(ins[1].shape[1:])
    if node.op is linalg.Gemm:
        a = ins[0]
        return out.numel * (a.shape[0] if node.attrs.transA else a.shape[1])
    if node.op is linalg.MatMul:
        return out.numel * ins[0].shape[-1]
    return 0


def _learned(graph: Graph, node: Node) -> list[Value]:
    skip = STATISTICS_INPUTS.get(node.op, frozenset())
    return [v for i, v in enumerate(node.inputs)
            if graph.is_constant(v) and v.type.dtype.is_float and i not in skip]


def _extent(fields: dict[Value, Field], values: Sequence[Value]) -> tuple[int, ...] | None:
    known = [fields[v] for v in values if v in fields]
    if not known:
        return None
    widest = known[0]
    for field in known[1:]:
        widest = widest.widest(field)
    return widest.extent


def _row(name: str, op: str, shown: TensorType, live: Sequence[TensorType], parameters: int, macs_: int,
         flops: int, field: tuple[int, ...] | None) -> LayerRow:
    return LayerRow(name, op, shown.shape, sum(t.numel for t in live), sum(t.nbytes for t in live),
                    parameters, macs_, flops, field)


def summarize(graph: Graph) -> Summary:
    fields = receptive_fields(graph)
    read = set(graph.consumers()) | set(graph.outputs)
    inputs = [_row(v.name, "input", v.type, [v.type], 0, 0, 0, _extent(fields, [v])) for v in graph.inputs]
    layers = []
    for node in graph.nodes:
        live = [v.type for v in node.outputs if v in read] or [node.outputs[0].type]
        in_types, out_types = [v.type for v in node.inputs], [v.type for v in node.outputs]
        layers.append(_row(node.name, node.op.name, node.outputs[0].type, live,
                           sum(v.type.numel for v in _learned(graph, node)), macs(node),
                           node.op.flops(in_types, out_types, node.attrs), _extent(fields, node.outputs[:1])))
    learned = {v for node in graph.nodes for v in _learned(graph, node)}
    statistics = sum(v.type.numel for v in graph.constants if v not in learned and v.type.dtype.is_float)
    rows = inputs + layers
    totals = Totals(
        activations=sum(r.activations for r in rows), activation_bytes=sum(r.activation_bytes for r in rows),
        parameters=sum(v.type.numel for v in learned), statistics=statistics,
        macs=sum(r.macs for r in layers), flops=sum(r.flops for r in layers),
        receptive_field=_extent(fields, graph.outputs),
    )
    return Summary(graph.name, inputs, layers, totals)


def layer_table(graph: Graph) -> list[LayerRow]:
    """One row per node, in graph order."""
    return summarize(graph).layers


HEADER = ("layer", "op", "output shape", "activations", "memory", "params", "MACs", "receptive field")


def format_table(summary: Summary) -> str:
    """A fixed-width table, one line per input and node, then the totals."""
    def cells(r: LayerRow | Totals, name: str, op: str, shape: str) -> tuple[str, ...]:
        field = "x".join(map(str, r.receptive_field)) if r.receptive_field else ""
        return (name, op, shape, _human(r.activations), _human(r.activation_bytes, "B"), f"{r.parameters:,}",
                _human(r.macs), field)

    body = [cells(r, r.name, r.op, "x".join(map(str, r.output_shape))) for r in summary.inputs + summary.layers]
    t = summary.totals
    totals = cells(t, "total", "", "")
    table = [HEADER, *body, totals]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             .rstrip() for row in table]
    rule = "-" * max(map(len, lines))
    footer = (f"{summary.model}: {len(summary.layers)} nodes, {t.parameters:,} parameters"
              + (f" (+{t.statistics:,} BatchNorm statistics)" if t.statistics else "")
              + f", {_human(t.macs)} MACs, {_human(t.flops)} FLOPs")
    return "\n".join([lines[0], rule, *lines[1:-1], rule, lines[-1], footer])


def _human(count: int, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.2f}{suffix}{unit}"
    return f"{count}{unit}"
