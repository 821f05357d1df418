"""Reading an ONNX model: parse it, load its weights (external data included), validate it.

onnx's checker, shape inference and version converter each serialize the whole model, so
on a model with half a gigabyte of weights every pass costs seconds. None of them needs
the weights' values (shape inference reads only small shape tensors), so they run on a
*skeleton*: the model with every initializer of more than SPLIT_ELEMENTS elements (and
every one kept in an external file) split out, a graph input of the same type standing in for it. The
split-out tensors are decoded to arrays once, here, by onnx_tensors, which checks every
initializer's declared sizes first (external data included).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import onnx
from google.protobuf.message import DecodeError, Message
from onnx import helper

from cnncompile.errors import ModelError
from cnncompile.frontends.onnx_tensors import check_tensor, first_line, read_external, tensor_array

SPLIT_ELEMENTS = 256


@dataclass(frozen=True)
class Skeleton:
    """A model without its large initializers, and their values.

    `stand_ins` are the graph inputs added in place of split-out initializers that were
    not graph inputs already; `without_stand_ins` removes them again once onnx is done.
    """

    proto: onnx.ModelProto
    weights: dict[str, np.ndarray]
    stand_ins: frozenset[str]

    def without_stand_ins(self, proto: onnx.ModelProto) -> onnx.ModelProto:
        declared = [i for i in proto.graph.input if i.name not in self.stand_ins]
        del proto.graph.input[:]
        proto.graph.input.extend(declared)
        return proto


class ShapelessOutput(ModelError):
    """onnx's shape inference gave up on a node, silently, so the checker found a graph output
    without a shape: the node's real fault is for cnncompile's own shape rules to name."""


def parse(model: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, Path | None]:
    """The ModelProto and the directory its external data lives in (None for a proto)."""
    if isinstance(model, onnx.ModelProto):
        proto, base = model, None
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file '{path}' does not exist")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except (DecodeError, OSError, ValueError, RuntimeError, UnicodeDecodeError) as err:
            raise ModelError(f"'{path}' is not a readable ONNX model ({err.__class__.__name__}: "
                             f"{first_line(err)})") from None
        base = path.resolve().parent
    _check_text(proto, "")
    if not proto.ir_version or not proto.HasField("graph"):
        missing = "an ir_version" if not proto.ir_version else "a graph"
        raise ModelError(f"'{model if base else 'the ModelProto'}' is not an ONNX model: it has no {missing}")
    return proto, base


def _check_text(message: Message, path: str) -> None:
    """Refuse a string field that is not UTF-8: protobuf hands it back as bytes, which no name
    lookup, path or message expects (an external data location that was bytes raised TypeError)."""
    for field, value in message.ListFields():
        if field.type not in (field.TYPE_STRING, field.TYPE_MESSAGE):
            continue
        values = [value] if isinstance(value, (str, bytes, Message)) else value
        for index, item in enumerate(values):
            where = f"{path}{field.name}" + ("" if values is not value else f"[{index}]")
            if isinstance(item, Message):
                _check_text(item, where + ".")
            elif isinstance(item, bytes):
                raise ModelError(f"the model's {where} is not UTF-8 text ({item[:40]!r}); ONNX names and "
                                 "strings must be UTF-8, so the file is damaged or was not written by an exporter")


def split_weights(proto: onnx.ModelProto, base: Path | None) -> Skeleton:
    """Copy `proto` without its large or external initializers, decoding those to arrays."""
    skeleton = _copy_without(proto, "graph")
    skeleton.graph.CopyFrom(_copy_without(proto.graph, "initializer"))
    declared = {i.name for i in proto.graph.input}
    weights: dict[str, np.ndarray] = {}
    stand_ins = set()
    for tensor in proto.graph.initializer:
        external = tensor.data_location == onnx.TensorProto.EXTERNAL
        if not external and math.prod(tensor.dims) <= SPLIT_ELEMENTS:
            check_tensor(tensor)  # decoded at import, but checked before onnx's checker sees it
            skeleton.graph.initializer.append(tensor)
            continue
        weights[tensor.name] = read_external(tensor, base) if external else tensor_array(tensor)
        if tensor.name not in declared:
            skeleton.graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
            stand_ins.add(tensor.name)
    return Skeleton(skeleton, weights, frozenset(stand_ins))


def _copy_without(message: Message, skipped: str) -> Message:
    """A copy of `message` lacking one field, without ever copying that field."""
    copy = type(message)()
    for field, value in message.ListFields():
        if field.name == skipped:
            continue
        target = getattr(copy, field.name)
        if isinstance(value, Message):
            target.CopyFrom(value)
        elif hasattr(target, "extend"):
            target.extend(value)
        else:
            setattr(copy, field.name, value)
    return copy


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Check that every value has one producer and put the nodes in topological order.

    ONNX requires the order, onnxruntime does not, so an unsorted but acyclic graph is
    accepted; a cycle, a value nothing produces and a value produced twice are errors.
    """
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name in producer or (name and name in available):
                raise ModelError(f"value '{name}' is produced twice (by {_describe(graph.node[index])} and "
                                 "another); ONNX values have exactly one producer")
            if name:
                producer[name] = index
    missing = [f"{_describe(node)} reads '{name}'" for node in graph.node for name in node.input
               if name not in available and name not in producer]
    known = available | set(producer)
    missing += [f"graph output '{o.name}'" for o in graph.output if o.name not in known]
    if missing:
        raise ModelError("no node, graph input or initializer produces: " + "; ".join(missing)
                         + "; add the missing initializer or input, or fix the names")
    if not graph.output:
        raise ModelError("the graph declares no outputs, so there is nothing to compute; list the "
                         "tensors it should produce in graph.output")
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(graph.node)))
    dag.add_edges_from((producer[name], index) for index, node in enumerate(graph.node)
                       for name in node.input if name in producer)
    try:
        order = list(nx.lexicographical_topological_sort(dag))
    except nx.NetworkXUnfeasible:
        cycle = [graph.node[source] for source, _ in nx.find_cycle(dag)]
        raise ModelError("the graph has a cycle: " + " -> ".join(_describe(n) for n in cycle)
                         + f" -> back to {_describe(cycle[0])}; an ONNX graph must be acyclic") from None
    if order != sorted(order):
        nodes = [graph.node[i] for i in order]
        del graph.node[:]
        graph.node.extend(nodes)


def validate(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Run onnx's checker and shape inference, their failures becoming ModelErrors."""
    inferred = proto
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
        onnx.checker.check_model(inferred)  # after inference, which fills the shapes it requires of outputs
        return inferred
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as err:
        text = first_line(err)
        shapeless = _shapeless_outputs(inferred.graph) if "'shape'" in text else ""
        raise (ShapelessOutput if shapeless else ModelError)(
            f"the ONNX checker rejects the model: {text}{shapeless}") from None


def _shapeless_outputs(graph: onnx.GraphProto) -> str:
    """onnx's complaint of a missing shape names no value: name the graph outputs lacking one."""
    producers = {name: node for node in graph.node for name in node.output}
    missing = [f"graph output '{o.name}'" + (f" of {_describe(producers[o.name])}" if o.name in producers else "")
               for o in graph.output if not o.type.tensor_type.HasField("shape")]
    if not missing:
        return ""
    return ("; " + ", ".join(missing) + " has no declared shape and onnx's shape inference found none (it gives "
            "up, silently, on a node whose attributes it cannot read); declare the output's shape, or check the "
            "attributes of the nodes before it")


def _describe(node: onnx.NodeProto) -> str:
    return f"node '{node.name or '?'}' ({node.op_type})"
