"""A one-line-per-node text form of a graph, for humans and for diffs."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np

from cnncompile.ir.graph import Graph


def _format_attr(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, np.ndarray):
        return f"array{list(value.shape)}" if value.size > 4 else repr(value.tolist())
    if isinstance(value, tuple):
        return "[" + ",".join(_format_attr(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    if dataclasses.is_dataclass(value):
        return "{" + ",".join(f"{f.name}={_format_attr(getattr(value, f.name))}" for f in dataclasses.fields(value)) + "}"
    return str(value)


def format_graph(graph: Graph) -> str:
    lines = [f"graph {graph.name}("]
    lines += [f"    %{v.name}: {v.type}," for v in graph.inputs]
    lines.append(") {")
    for value, array in graph.constants.items():
        lines.append(f"  %{value.name}: {value.type} = constant")
    for node in graph.nodes:
        outs = ", ".join(f"%{v.name}: {v.type}" for v in node.outputs)
        args = ", ".join(f"%{v.name}" for v in node.inputs)
        attrs = node.changed_attrs()
        attr_text = " {" + ", ".join(f"{k}={_format_attr(v)}" for k, v in attrs.items()) + "}" if attrs else ""
        lines.append(f"  {outs} = {node.op.name}({args}){attr_text}  # {node.name}")
    lines.append("  return " + ", ".join(f"%{v.name}" for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines)
