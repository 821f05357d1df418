"""ONNX import: a ModelProto (or file) into a verified IR Graph.

Shapes are bound at import: graph inputs must have static dims (or be given by
`input_shapes`), and every node whose inputs are all known at compile time is evaluated
by its reference kernel on the spot, so exporters' shape sub-graphs (Shape -> Gather ->
Concat -> Reshape) arrive as constants. ONNX inputs that cnncompile keeps as attributes
(Reshape's shape, Pad's pads, ...) must be such constants.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from cnncompile.errors import CnnCompileError, ModelError, UnsupportedError
from cnncompile.frontends.onnx_attrs import coerce, field_hints
from cnncompile.ir.graph import Graph, Value
from cnncompile.ir.types import DType, TensorType
from cnncompile.ir.verifier import verify
from cnncompile.ops import lookup
from cnncompile.ops.registry import OpDef

InputShapes = Mapping[str, Sequence[int]]


def read_model(model: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, Path | None]:
    """Parse a model file (or accept a proto), run onnx's shape inference and checker."""
    if isinstance(model, onnx.ModelProto):
        proto, base = model, None
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file '{path}' does not exist")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except (DecodeError, onnx.onnx_cpp2py_export.checker.ValidationError, ValueError, RuntimeError) as err:
            raise ModelError(f"'{path}' is not a readable ONNX model ({err.__class__.__name__}: {err})") from None
        base = path.resolve().parent
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        first = str(err).strip().splitlines()[0]
        raise ModelError(f"the ONNX checker rejects the model: {first}") from None
    return proto, base


def _tensor_type(info: onnx.ValueInfoProto, shapes: InputShapes) -> TensorType:
    tensor = info.type.tensor_type
    dtype = DType.of(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    if info.name in shapes:
        return TensorType(tuple(shapes[info.name]), dtype)
    dims = []
    for i, dim in enumerate(tensor.shape.dim):
        if not dim.HasField("dim_value"):
            label = dim.dim_param or "?"
            raise ModelError(
                f"input '{info.name}' has dynamic dim {i} ('{label}'); bind it with "
                f"input_shapes={{'{info.name}': (...)}} or --input-shape {info.name}=1x3x224x224"
            )
        dims.append(dim.dim_value)
    return TensorType(tuple(dims), dtype)


class _Importer:
    def __init__(self, proto: onnx.ModelProto, shapes: InputShapes):
        self.proto = proto
        self.graph = Graph(name=proto.graph.name or "model")
        self.shapes = shapes
        self.values: dict[str, Value] = {}

    def run(self) -> Graph:
        onnx_graph = self.proto.graph
        self._check_supported(onnx_graph)
        for init in onnx_graph.initializer:
            self.values[init.name] = self.graph.add_constant(numpy_helper.to_array(init), init.name)
        unknown = set(self.shapes) - {i.name for i in onnx_graph.input}
        if unknown:
            raise ModelError(f"input_shapes names unknown input(s) {sorted(unknown)}; the model's inputs are "
                             + ", ".join(i.name for i in onnx_graph.input if i.name not in self.values))
        for info in onnx_graph.input:
            if info.name not in self.values:
                self.values[info.name] = self.graph.add_input(info.name, _tensor_type(info, self.shapes))
        for index, node in enumerate(onnx_graph.node):
            self._import_node(node, index)
        for info in onnx_graph.output:
            self.graph.outputs.append(self.values[info.name])
        self.graph.drop_unused_constants()
        verify(self.graph)
        return self.graph

    def _check_supported(self, onnx_graph: onnx.GraphProto) -> None:
        opsets = {o.domain or "ai.onnx": o.version for o in self.proto.opset_import}
        bad = [
            f"{n.op_type} (node '{n.name or '?'}', domain '{n.domain or 'ai.onnx'}', "
            f"opset {opsets.get(n.domain or 'ai.onnx', '?')})"
            for n in onnx_graph.node
            if n.domain not in ("", "ai.onnx") or lookup(n.op_type) is None
        ]
        if bad:
            raise UnsupportedError(f"{len(bad)} unsupported node(s): " + "; ".join(bad))

    def _import_node(self, node: onnx.NodeProto, index: int) -> None:
        op = lookup(node.op_type)
        name = node.name or f"{node.op_type.lower()}_{index}"
        where = f"node '{name}' ({node.op_type})"
        attrs, inputs = self._attrs_and_inputs(op, node, where)
        outputs_named = [o for o in node.output]
        if all(self.graph.is_constant(v) for v in inputs) or (op.value_independent and inputs):
            self._fold(op, node, name, inputs, attrs)
            return
        hints = [o or f"{name}_unused{i}" for i, o in enumerate(outputs_named)]
        try:
            out_types = op.infer([v.type for v in inputs], attrs)
        except CnnCompileError as err:
            raise type(err)(f"{where}: {err}") from None
        hints += [f"{name}_unused{i}" for i in range(len(hints), len(out_types))]
        self._check_outputs(node, len(out_types), where)
        outs = self.graph.add_node(op, inputs, attrs, name=name, output_names=hints[: len(out_types)])
        for onnx_name, value in zip(outputs_named, outs):
            if onnx_name:
                self.values[onnx_name] = value

    def _check_outputs(self, node: onnx.NodeProto, available: int, where: str) -> None:
        used = [i for i, o in enumerate(node.output) if o]
        if used and used[-1] >= available:
            raise UnsupportedError(
                f"{where}: output {used[-1]} is requested but cnncompile's {node.op_type} has {available} "
                "(training-mode outputs are not supported); export the model in inference mode"
            )

    def _attrs_and_inputs(self, op: OpDef, node: onnx.NodeProto, where: str):
        hints = field_hints(op.attrs)
        values: dict[str, object] = {}
        for attr in node.attribute:
            field = op.onnx_aliases.get(attr.name, attr.name)
            if field not in hints:
                raise UnsupportedError(f"{where}: attribute '{attr.name}' is not supported")
            try:
                values[field] = coerce(helper.get_attribute_value(attr), hints[field])
            except (ValueError, TypeError) as err:
                raise ModelError(f"{where}: attribute '{attr.name}' is invalid: {err}") from None
        inputs: list[Value] = []
        for position, onnx_name in enumerate(node.input):
            if position in op.onnx_inputs_as_attrs:
                if not onnx_name:
                    continue
                field = op.onnx_inputs_as_attrs[position]
                value = self.values.get(onnx_name)
                if value is None or not self.graph.is_constant(value):
                    raise UnsupportedError(
                        f"{where}: input {position} ('{onnx_name}') must be known at compile time "
                        f"(cnncompile keeps it as the attribute '{field}'); bind the input shapes so "
                        "it folds to a constant"
                    )
                values[field] = coerce(self.graph.constants[value], hints[field])
                continue
            if not onnx_name:
                if any(node.input[position + 1:]):
                    raise UnsupportedError(f"{where}: optional input {position} is omitted before a given one")
                break
            if onnx_name not in self.values:
                raise ModelError(f"{where}: input '{onnx_name}' is not produced by any node, input or initializer")
            inputs.append(self.values[onnx_name])
        if "num_outputs" in hints and values.get("num_outputs") is None and values.get("split") is None:
            values["num_outputs"] = len(node.output)
        try:
            return op.make_attrs(**values), inputs
        except CnnCompileError as err:
            raise ModelError(f"{where}: {err}") from None

    def _fold(self, op: OpDef, node: onnx.NodeProto, name: str, inputs: list[Value], attrs) -> None:
        """Evaluate a node whose result is known at compile time and keep it as constants."""
        args = [
            self.graph.constants[v] if self.graph.is_constant(v)
            else np.broadcast_to(np.zeros((), v.type.dtype.numpy), v.type.shape)
            for v in inputs
        ]
        where = f"node '{name}' ({node.op_type})"
        try:
            op.infer([v.type for v in inputs], attrs)
            results = op.run(args, attrs)
        except CnnCompileError as err:
            raise type(err)(f"{where}: {err}") from None
        self._check_outputs(node, len(results), where)
        for onnx_name, result in zip(node.output, results):
            if onnx_name:
                self.values[onnx_name] = self.graph.add_constant(np.require(result, requirements="C"), onnx_name)


def load_onnx(
    model: str | os.PathLike | onnx.ModelProto, input_shapes: InputShapes | None = None
) -> Graph:
    """Import an ONNX model into a verified Graph, binding `input_shapes` first."""
    proto, _ = read_model(model)
    return _Importer(proto, dict(input_shapes or {})).run()
