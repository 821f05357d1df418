"""ONNX import: a ModelProto (or file) into a verified IR Graph.

The pipeline: parse; refuse an impossible opset, unsupported ops (all of them in one
message) and attributes of the wrong type; split the weights out, checking every declared
size (onnx_tensors), and validate the rest with onnx's checker and shape inference
(onnx_read); bring models older than opset 13 to opset 21 (onnx_versions); then build the
graph, refusing any value too large for a 64-bit index. Each check runs before onnx or
numpy could fail on the same fault with a message that names nothing, or crash.

Shapes are bound at import: graph inputs must have static dims (or be given by
`input_shapes`), and every node whose inputs are all known at compile time is evaluated
by its reference kernel on the spot, so exporters' shape sub-graphs (Shape -> Gather ->
Concat -> Reshape) arrive as constants. ONNX inputs that cnncompile keeps as attributes
(Reshape's shape, Pad's pads, ...) must be such constants. A graph input that also has an
initializer is a constant unless `input_shapes` names it, which makes it a real input.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields

import numpy as np
import onnx
from onnx import helper

from cnncompile.errors import AttrError, CnnCompileError, ModelError, UnsupportedError
from cnncompile.frontends.forked import OnnxCrash, run_forked
from cnncompile.frontends.onnx_attrs import check_attribute_types, coerce, drop_empty_lists, field_hints
from cnncompile.frontends.onnx_inputs import check_size, input_types
from cnncompile.frontends.onnx_read import ShapelessOutput, parse, sort_nodes, split_weights, validate
from cnncompile.frontends.onnx_tensors import tensor_array
from cnncompile.frontends.onnx_versions import (
    DEFAULT_DOMAINS,
    IGNORED_ATTRIBUTES,
    UPGRADED_AWAY,
    Upgraded,
    check_opset,
    default_opset,
    legacy_resize_steps,
    upgrade,
)
from cnncompile.ir.graph import Graph, Value
from cnncompile.ir.types import DType, TensorType
from cnncompile.ir.verifier import verify
from cnncompile.ops import lookup
from cnncompile.ops.registry import OpDef

InputShapes = Mapping[str, Sequence[int]]

FOLD_LIMIT_BYTES = 1 << 30
NAMES_LISTED = 10


def load_onnx(
    model: str | os.PathLike | onnx.ModelProto, input_shapes: InputShapes | None = None
) -> Graph:
    """Import an ONNX model into a verified Graph, binding `input_shapes` first.

    Every error is a CnnCompileError on one line, whatever characters the model's names hold.
    """
    try:
        return _load(model, dict(input_shapes or {}))
    except CnnCompileError as err:
        text = str(err)
        if text.isprintable():
            raise
        raise type(err)("".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)) from None


def _load(model: str | os.PathLike | onnx.ModelProto, shapes: InputShapes) -> Graph:
    proto, base = parse(model)
    check_opset(proto)
    check_supported(proto)
    check_attribute_types(proto)
    skeleton = split_weights(proto, base)
    drop_empty_lists(skeleton.proto.graph)
    sort_nodes(skeleton.proto.graph)
    try:
        upgraded = run_forked(_validate_and_upgrade, skeleton.proto, what="checking and upgrading the model")
    except (OnnxCrash, ShapelessOutput):
        # onnx died, or gave up, where it should have complained; cnncompile's own shape
        # rules usually name the node at fault, so let them speak first.
        _Importer(skeleton.without_stand_ins(skeleton.proto), skeleton.weights, frozenset(), shapes).run()
        raise
    check_supported(upgraded.proto)
    return _Importer(skeleton.without_stand_ins(upgraded.proto), skeleton.weights, upgraded.legacy_resizes,
                     shapes).run()


def _validate_and_upgrade(proto: onnx.ModelProto) -> Upgraded:
    return upgrade(validate(proto))


def check_supported(proto: onnx.ModelProto) -> None:
    """Raise one UnsupportedError naming every node cnncompile cannot import, grouped by op."""
    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    opset = default_opset(proto) or 0
    unsupported: dict[tuple[str, str], list[str]] = {}
    for index, node in enumerate(proto.graph.node):
        domain = node.domain or "ai.onnx"
        known = node.domain in DEFAULT_DOMAINS and (
            _onnx_op(node.op_type) is not None or opset < UPGRADED_AWAY.get(node.op_type, 0))
        if not known:
            unsupported.setdefault((domain, node.op_type), []).append(node.name or f"#{index}")
    if not unsupported:
        return
    groups = []
    for (domain, op_type), names in unsupported.items():
        version = f"opset {opsets[domain]}" if domain in opsets else "a domain the model never imports"
        shown = ", ".join(f"'{n}'" for n in names[:NAMES_LISTED])
        more = f" and {len(names) - NAMES_LISTED} more" if len(names) > NAMES_LISTED else ""
        groups.append(f"{op_type} ({domain}, {version}) x{len(names)}: {shown}{more}")
    count = sum(len(names) for names in unsupported.values())
    raise UnsupportedError(f"{count} unsupported node(s): " + "; ".join(groups)
                           + "; cnncompile imports the ai.onnx ops that `cnncompile ops` lists")


def _onnx_op(op_type: str) -> OpDef | None:
    """The registered op an ai.onnx node is; cnncompile's own (fused) ops are not ONNX ops."""
    op = lookup(op_type)
    return op if op is not None and not op.domain else None


class _Importer:
    def __init__(self, proto: onnx.ModelProto, weights: Mapping[str, np.ndarray],
                 legacy_resizes: frozenset[str], shapes: InputShapes):
        self.proto = proto
        self.weights = weights
        self.legacy_resizes = legacy_resizes
        self.shapes = shapes
        self.graph = Graph(name=proto.graph.name or "model")
        self.values: dict[str, Value] = {}

    def run(self) -> Graph:
        onnx_graph = self.proto.graph
        constants = {**{t.name: tensor_array(t) for t in onnx_graph.initializer}, **self.weights}
        inputs = [i for i in onnx_graph.input if i.name not in constants or i.name in self.shapes]
        overridden = {i.name for i in inputs}
        for name, array in constants.items():
            if name not in overridden:
                self.values[name] = self._constant(array, name, f"initializer '{name}'")
        for info, tensor_type in zip(inputs, input_types(inputs, self.shapes, list(onnx_graph.input))):
            self.values[info.name] = self.graph.add_input(info.name, tensor_type)
        for index, node in enumerate(onnx_graph.node):
            self._import_node(node, index)
        self.graph.outputs.extend(self.values[info.name] for info in onnx_graph.output)
        self.graph.drop_unused_constants()
        verify(self.graph)
        return self.graph

    def _constant(self, array: np.ndarray, name: str, what: str) -> Value:
        try:
            TensorType.of(array)
        except (ValueError, TypeError):
            raise UnsupportedError(f"{what} has element type {array.dtype}, which cnncompile does not support; "
                                   f"use one of {', '.join(d.value for d in DType)}") from None
        return self.graph.add_constant(np.require(array, requirements="C"), name)

    def _import_node(self, node: onnx.NodeProto, index: int) -> None:
        op = _onnx_op(node.op_type)
        name = node.name or f"{node.op_type.lower()}_{index}"
        where = f"node '{name}' ({node.op_type})"
        attrs, inputs = self._attrs_and_inputs(op, node, where)
        steps = legacy_resize_steps(attrs) if node.output and node.output[0] in self.legacy_resizes else [attrs]
        for part, step in enumerate(steps[:-1]):
            inputs = self._apply(op, node, f"{name}_part{part}", inputs, step, [f"{node.output[0]}_part{part}"])
        for onnx_name, value in zip(node.output, self._apply(op, node, name, inputs, steps[-1], list(node.output))):
            if onnx_name:
                self.values[onnx_name] = value

    def _apply(self, op: OpDef, node: onnx.NodeProto, name: str, inputs: list[Value], attrs,
               output_names: list[str]) -> list[Value]:
        """Fold the node when its result is known at compile time, else add it to the graph."""
        where = f"node '{name}' ({node.op_type})"
        try:
            out_types = op.infer([v.type for v in inputs], attrs)
        except CnnCompileError as err:
            raise type(err)(f"{where}: {err}") from None
        _check_outputs(node, len(out_types), where)
        for out_type, out_name in zip(out_types, output_names):
            check_size(out_type, f"{where} output '{out_name}'")
        hints = [o or f"{name}_unused{i}" for i, o in enumerate(output_names)]
        hints += [f"{name}_unused{i}" for i in range(len(hints), len(out_types))]
        if all(self.graph.is_constant(v) for v in inputs) or (op.value_independent and inputs):
            return self._fold(op, where, inputs, attrs, out_types, hints)
        return self.graph.add_node(op, inputs, attrs, name=name, output_names=hints[: len(out_types)])

    def _fold(self, op: OpDef, where: str, inputs: list[Value], attrs, out_types: list[TensorType],
              hints: list[str]) -> list[Value]:
        """Evaluate a node whose result is known at compile time and keep it as constants."""
        size = sum(t.nbytes for t in out_types)
        if size > FOLD_LIMIT_BYTES:
            raise ModelError(f"{where} computes a {size / 2**30:.1f} GiB constant at compile time; "
                             f"check its shape inputs ({', '.join(str(t) for t in out_types)})")
        args = [
            self.graph.constants[v] if self.graph.is_constant(v)
            else np.broadcast_to(np.zeros((), v.type.dtype.numpy), v.type.shape)
            for v in inputs
        ]
        try:
            results = op.run(args, attrs)
        except CnnCompileError as err:
            raise type(err)(f"{where}: {err}") from None
        return [self._constant(result, hint, f"{where} output '{hint}'") for result, hint in zip(results, hints)]

    def _attrs_and_inputs(self, op: OpDef, node: onnx.NodeProto, where: str):
        hints = field_hints(op.attrs)
        values: dict[str, object] = {}
        for attr in node.attribute:
            if (node.op_type, attr.name) in IGNORED_ATTRIBUTES:
                continue
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
                try:
                    values[field] = coerce(self.graph.constants[value], hints[field])
                except (ValueError, TypeError) as err:
                    raise ModelError(f"{where}: input {position} ('{onnx_name}') is invalid: {err}") from None
                continue
            if not onnx_name:
                if any(node.input[position + 1:]):
                    raise UnsupportedError(f"{where}: optional input {position} is omitted before a given one")
                break
            inputs.append(self.values[onnx_name])
        if "num_outputs" in hints and values.get("num_outputs") is None and values.get("split") is None:
            values["num_outputs"] = len(node.output)
        _check_required(op, values, where)
        try:
            return op.make_attrs(**values), inputs
        except CnnCompileError as err:
            raise ModelError(f"{where}: {err}") from None


def _check_required(op: OpDef, values: Mapping[str, object], where: str) -> None:
    """Name a required attribute (or attribute-kept input) the node lacks, in ONNX's terms."""
    as_inputs = {field: position for position, field in op.onnx_inputs_as_attrs.items()}
    onnx_names = {field: alias for alias, field in op.onnx_aliases.items()}
    for field in fields(op.attrs):
        if field.name in values or field.default is not MISSING or field.default_factory is not MISSING:
            continue
        if field.name in as_inputs:
            raise AttrError(f"{where}: input {as_inputs[field.name]} ('{field.name}') is required but not given")
        raise AttrError(f"{where}: the required attribute '{onnx_names.get(field.name, field.name)}' is missing")


def _check_outputs(node: onnx.NodeProto, available: int, where: str) -> None:
    used = [i for i, o in enumerate(node.output) if o]
    if used and used[-1] >= available:
        raise UnsupportedError(
            f"{where}: output {used[-1]} is requested but cnncompile's {node.op_type} has {available} "
            "(training-mode outputs are not supported); export the model in inference mode"
        )

