"""ONNX export: the IR back to a standard ONNX model that onnx.checker accepts.

Every node becomes the ONNX node of the same name; the attributes cnncompile keeps as
attributes but ONNX takes as inputs (Reshape's shape, Pad's pads, Clip's bounds, ...)
become initializers again, and attributes left at their defaults are omitted, so the
exported file reads like one written by an exporter and opens in Netron as is.

cnncompile's fused ops have no ONNX equivalent node, but every one stands for a short
chain of standard ops (`cnncompile.ops.fused.expand`): a FusedConv exports as Conv, Add
(its residual) and its activation, a ChannelAffine as Mul, Add and its activation. An
optimized graph therefore exports as plain ONNX that onnxruntime runs and Netron draws,
with the folds (BatchNorm, Pad, per-channel scales) already in the weights. Layouts are
how a backend stores values, not what they are: every value exports with its logical
shape, a LayoutTransform as Identity, and a FusedConv without its algorithm, layout and tile.

A node over bfloat16 values, or over floats of mixed widths (a reduced-precision conv's
float32 bias), exports as what it computes: its 16-bit inputs Cast to float32, the op in
float32, its results Cast back, so one rounding on store, as the kernel makes it.
"""

from __future__ import annotations

import enum
import os
import typing
from dataclasses import MISSING, fields
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from cnncompile.errors import CnnCompileError
from cnncompile.frontends.onnx_attrs import base_hint
from cnncompile.ir.graph import Graph, Node, Value, unique_name
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.elementwise import Cast, CastAttrs
from cnncompile.ops.fused import expand
from cnncompile.fileio import write_atomically

OPSET = 21
IR_VERSION = 10


def _elem_type(dtype: DType) -> int:
    return helper.np_dtype_to_tensor_dtype(dtype.numpy)


def _value_info(value: Value) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(value.name, _elem_type(value.type.dtype), value.type.shape)


def _attribute_value(value: Any) -> Any:
    if isinstance(value, DType):
        return _elem_type(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, np.ndarray):
        return numpy_helper.from_array(value)
    if isinstance(value, tuple):
        return [_attribute_value(v) for v in value]
    return value


def _is_default(field, value: Any) -> bool:
    if value is None:
        return True
    if field.default is MISSING or isinstance(value, np.ndarray):
        return False
    return value == field.default


def _input_tensor(value: Any, hint: Any, like: TensorType | None) -> np.ndarray:
    """The array an attribute-kept-as-input becomes: int64 lists, float lists, or X's dtype."""
    hint = base_hint(hint)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return np.asarray(value, np.int64 if item is int else np.float32)
    if hint is np.ndarray:
        return np.asarray(value)
    dtype = like.dtype.numpy if like is not None else np.float32
    return np.asarray(value, dtype)


class _Exporter:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.initializers: list[onnx.TensorProto] = []
        self.taken = {v.name for v in graph.values()}

    def _fresh(self, hint: str) -> str:
        return unique_name(hint, self.taken)

    def node(self, node: Node) -> onnx.NodeProto:
        op = node.op
        hints = typing.get_type_hints(op.attrs)
        promoted = {field: position for position, field in op.onnx_inputs_as_attrs.items()}
        attributes = {}
        slots: dict[int, str] = {}
        for field in fields(node.attrs):
            value = getattr(node.attrs, field.name)
            if _is_default(field, value):
                continue
            if field.name in promoted:
                like = node.inputs[0].type if node.inputs else None
                name = self._fresh(f"{node.name}_{field.name}")
                self.initializers.append(numpy_helper.from_array(_input_tensor(value, hints[field.name], like), name))
                slots[promoted[field.name]] = name
            else:
                attributes[field.name] = _attribute_value(value)
        data = iter(v.name for v in node.inputs)
        width = max([*slots, -1]) + 1
        inputs = [slots.get(p, "") if p in op.onnx_inputs_as_attrs else next(data, "") for p in range(width)]
        inputs += list(data)
        while inputs and not inputs[-1]:
            inputs.pop()
        return helper.make_node(op.name, inputs, [v.name for v in node.outputs], name=node.name, **attributes)

    def widened(self, node: Node) -> list[Node]:
        """The node itself, or, over bfloat16 or mixed float widths, the node in float32 between Casts."""
        floats = {v.type.dtype for v in (*node.inputs, *node.outputs) if v.type.dtype.is_float}
        if node.op is Cast or not (DType.BFLOAT16 in floats or len(floats) > 1 and floats & {DType.FLOAT16}):
            return [node]
        nodes: list[Node] = []

        def cast(value: Value, to: DType, name: str) -> Value:
            out = Value(self._fresh(name), TensorType(value.type.shape, to, value.type.layout))
            nodes.append(Node(Cast, [value], [out], CastAttrs(to), self._fresh(name)))
            return out

        inputs = [cast(v, DType.FLOAT32, f"{node.name}_{v.name}_wide") if v.type.dtype.is_reduced else v
                  for v in node.inputs]
        wide = [Value(self._fresh(f"{v.name}_wide"), TensorType(v.type.shape, DType.FLOAT32, v.type.layout))
                if v.type.dtype.is_reduced else v for v in node.outputs]
        nodes.append(Node(node.op, inputs, wide, node.attrs, node.name))
        for original, value in zip(node.outputs, wide):
            if value is not original:
                nodes.append(Node(Cast, [value], [original], CastAttrs(original.type.dtype),
                                  self._fresh(f"{original.name}_store")))
        return nodes

    def model(self) -> onnx.ModelProto:
        graph = self.graph
        standard = [part for n in graph.nodes for expanded in (expand(n, self._fresh) if n.op.domain else [n])
                    for part in self.widened(expanded)]
        nodes = [self.node(n) for n in standard]
        self.initializers[:0] = [numpy_helper.from_array(a, v.name) for v, a in graph.constants.items()]
        onnx_graph = helper.make_graph(
            nodes, graph.name, [_value_info(v) for v in graph.inputs], [_value_info(v) for v in graph.outputs],
            self.initializers, value_info=[_value_info(v) for n in standard for v in n.outputs
                                           if v not in graph.outputs],
        )
        opsets = [helper.make_opsetid("", max([OPSET, *(_first_opset(n.op_type) for n in nodes)]))]
        model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="cnncompile")
        model.ir_version = max(IR_VERSION, helper.find_min_ir_version_for(opsets))
        return model


def _first_opset(op_type: str) -> int:
    """OPSET when it has `op_type`, else the first opset that does (Attention, RMSNormalization: 23): a
    graph using a newer op exports at the opset that introduced it, where the others mean the same."""
    return next((v for v in range(OPSET, onnx.defs.onnx_opset_version() + 1) if onnx.defs.has(op_type, v)), OPSET)


def to_onnx(graph: Graph) -> onnx.ModelProto:
    """The graph as a checked ONNX ModelProto."""
    model = _Exporter(graph).model()
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise CnnCompileError(f"graph '{graph.name}' exports to an invalid ONNX model: {err}") from None
    return model


def save_onnx(graph: Graph, path: str | os.PathLike) -> None:
    """Write the graph as an ONNX file, atomically."""
    model = to_onnx(graph)
    write_atomically(path, lambda handle: handle.write(model.SerializeToString()))
