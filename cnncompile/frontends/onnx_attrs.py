"""Turning ONNX attributes (and compile-time-constant inputs) into typed op attributes,
once their types are the ones onnx's schemas declare.

The op declarations name their attribute fields exactly as ONNX does, so conversion is
driven by each field's type hint: ints lists become tuples, strings become the field's
enum, tensors become arrays, element-type codes become DTypes.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from dataclasses import fields
from typing import Any

import numpy as np
import onnx
import onnx.defs
from onnx import helper, numpy_helper

from cnncompile.errors import AttrError
from cnncompile.frontends.onnx_versions import DEFAULT_DOMAINS, default_opset
from cnncompile.ir.types import DType


def base_hint(hint: Any) -> Any:
    """Strip `| None` from a field's hint."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        return arms[0] if len(arms) == 1 else hint
    return hint


def coerce(value: Any, hint: Any) -> Any:
    """Convert a Python or NumPy value read from ONNX to the type `hint` names."""
    hint = base_hint(hint)
    if isinstance(value, onnx.TensorProto):
        value = numpy_helper.to_array(value)
    if isinstance(value, bytes):
        value = value.decode()
    if hint is np.ndarray:
        return np.asarray(value)
    if hint is DType:
        return DType.of(helper.tensor_dtype_to_np_dtype(int(value)))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(coerce(v, item) for v in np.asarray(value).reshape(-1).tolist())
    if hint in (int, float, str):
        if isinstance(value, np.ndarray):
            value = value.reshape(-1)[0].item() if value.size == 1 else value.tolist()
        return hint(value)
    return value


@functools.cache
def field_hints(attrs_type: type) -> dict[str, Any]:
    """Each attribute field's type hint; cached, as resolving hints costs more than importing a node."""
    hints = typing.get_type_hints(attrs_type)
    return {f.name: hints[f.name] for f in fields(attrs_type)}


def drop_empty_lists(graph: onnx.GraphProto) -> None:
    """Remove the list attributes that hold nothing, so they read as absent.

    onnxruntime reads `dilations=[]` (strides, pads, perm, axes alike) as the attribute's
    default; onnx's shape inference gives up on such a node without a word, and its strict
    checker, which an exported model must pass, calls the size wrong.
    """
    lists = (onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS, onnx.AttributeProto.STRINGS)
    for node in graph.node:
        kept = [a for a in node.attribute if a.type not in lists or helper.get_attribute_value(a)]
        if len(kept) < len(node.attribute):
            del node.attribute[:]
            node.attribute.extend(kept)


def check_attribute_types(proto: onnx.ModelProto) -> None:
    """Refuse an ai.onnx node's attribute whose type is not the one its schema declares.

    onnx's shape inference gives up on such a node without saying why, and the checker,
    which must run after inference, then complains of a missing output shape, naming
    neither the node nor the attribute.
    """
    opset = default_opset(proto)
    if opset is None:
        return
    for index, node in enumerate(proto.graph.node):
        if node.domain not in DEFAULT_DOMAINS:
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            continue  # check_supported has refused it, or onnx's checker will
        for attr in node.attribute:
            declared = schema.attributes.get(attr.name)
            if declared is not None and attr.type != declared.type:
                raise AttrError(f"node '{node.name or f'#{index}'}' ({node.op_type}): attribute '{attr.name}' is "
                                f"{_type_name(attr.type)}, but {node.op_type}-{schema.since_version} declares it "
                                f"{_type_name(declared.type)}; fix the exporter or the model")


def _type_name(code: int) -> str:
    return onnx.AttributeProto.AttributeType.Name(code) if code in onnx.AttributeProto.AttributeType.values() \
        else str(code)
