"""Per-layer statistics of a graph: output shape, activation memory, parameters, MACs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cnncompile.ir.graph import Graph


@dataclass(frozen=True)
class LayerRow:
    name: str
    op: str
    output_shape: tuple[int, ...]
    activation_bytes: int
    parameters: int
    flops: int

    def as_dict(self) -> dict:
        return asdict(self)


def layer_table(graph: Graph) -> list[LayerRow]:
    """One row per node; parameters are the elements of its constant inputs."""
    rows = []
    for node in graph.nodes:
        in_types = [v.type for v in node.inputs]
        out_types = [v.type for v in node.outputs]
        rows.append(LayerRow(
            name=node.name,
            op=node.op.name,
            output_shape=out_types[0].shape,
            activation_bytes=sum(t.nbytes for t in out_types),
            parameters=sum(v.type.numel for v in node.inputs if graph.is_constant(v)),
            flops=node.op.flops(in_types, out_types, node.attrs),
        ))
    return rows


def format_table(rows: list[LayerRow]) -> str:
    header = ("layer", "op", "output shape", "activations", "params", "FLOPs")
    body = [
        (r.name, r.op, "x".join(map(str, r.output_shape)), _human(r.activation_bytes, "B"),
         f"{r.parameters:,}", _human(r.flops, "")) for r in rows
    ]
    totals = ("total", "", "", _human(sum(r.activation_bytes for r in rows), "B"),
              f"{sum(r.parameters for r in rows):,}", _human(sum(r.flops for r in rows), ""))
    table = [header, *body, totals]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def _human(count: int, unit: str) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.2f}{suffix}{unit}"
    return f"{count}{unit}"
