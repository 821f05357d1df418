"""Receptive fields: how much of the input each activation can see.

The standard recurrence over sliding windows (Araujo et al., "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019): with r the field size and j
the jump (the input distance between adjacent outputs), a window of extent k and
stride s gives r' = r + (k - 1) j and j' = j s. Where paths merge (Add, Concat) the
larger field wins. Global pooling and Flatten see the whole map: r' = r + (n - 1) j.
Normalisation, activations and data movement leave the field as it is, as usual in
receptive-field accounting. Stacking L stride-1 KxK convs gives 1 + L (K - 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ops import conv, fused, pool, reduce, tensor

CONVS = (conv.Conv, fused.FusedConv)
WINDOWS = (*CONVS, pool.MaxPool, pool.AveragePool)
WHOLE_MAP = (pool.GlobalAveragePool, pool.GlobalMaxPool, tensor.Flatten, reduce.ReduceMean)


@dataclass(frozen=True)
class Field:
    size: tuple[float, ...]
    jump: tuple[float, ...]

    def widest(self, other: Field) -> Field:
        return Field(tuple(map(max, self.size, other.size)), tuple(map(max, self.jump, other.jump)))

    @property
    def extent(self) -> tuple[int, ...]:
        return tuple(math.ceil(s) for s in self.size)


def receptive_fields(graph: Graph) -> dict[Value, Field]:
    """The field of every activation that descends from a feature-map input (N, C, *spatial)."""
    fields: dict[Value, Field] = {}
    for value in graph.inputs:
        if value.type.rank >= 3:
            rank = value.type.rank - 2
            fields[value] = Field((1.0,) * rank, (1.0,) * rank)
    for node in graph.nodes:
        seen = [fields[v] for v in node.inputs if v in fields]
        if not seen:
            continue
        field = _through(node, seen[0]) if node.op in (*WINDOWS, conv.ConvTranspose, *WHOLE_MAP) else seen[0]
        for other in seen[1:]:
            field = field.widest(other)
        for value in node.outputs:
            fields[value] = field
    return fields


def _through(node: Node, field: Field) -> Field:
    x = node.inputs[0].type
    rank = len(field.size)
    if node.op in WHOLE_MAP:
        dims = x.shape[2:]
        if len(dims) != rank:
            return field
        return Field(tuple(r + (n - 1) * j for r, n, j in zip(field.size, dims, field.jump)), field.jump)
    attrs = node.attrs
    kernel = tuple(node.inputs[1].type.shape[2:]) if node.op in (*CONVS, conv.ConvTranspose) else attrs.kernel_shape
    if len(kernel) != rank:
        return field
    strides = attrs.strides or (1,) * rank
    dilations = attrs.dilations or (1,) * rank
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if node.op is conv.ConvTranspose:
        # Each output sees ceil(extent / s) neighbouring inputs, and outputs are s times denser.
        size = tuple(r + (math.ceil(e / s) - 1) * j for r, e, s, j in zip(field.size, extent, strides, field.jump))
        return Field(size, tuple(j / s for j, s in zip(field.jump, strides)))
    size = tuple(r + (e - 1) * j for r, e, j in zip(field.size, extent, field.jump))
    return Field(size, tuple(j * s for j, s in zip(field.jump, strides)))
