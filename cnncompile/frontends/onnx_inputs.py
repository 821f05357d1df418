"""Graph inputs: their element types, and their shapes with every dynamic dim bound.

Every dim is static once a model is imported. Dims the model leaves symbolic ('N', or
unnamed) are bound by the caller's `input_shapes` (the CLI's --input-shape); so is a dim
written as -1, as exporters (Paddle, older TensorFlow converters) write "any size", and a
dim written as 0 may be: unbound, a 0 stays an empty axis, which ONNX allows. When some
are left unbound, one error lists all of them with the flags that would bind them, so a
user fixes the command line in one go rather than one dim per attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import onnx
from onnx import helper

from cnncompile.errors import ModelError, UnsupportedError
from cnncompile.ir.types import DType, TensorType

Dim = int | str  # a static size, or the symbol of a dynamic one ('?' when unnamed, '-1' when written so)
ANY_SIZE = -1  # a dim_value exporters write for a dynamic dim

# numpy's and TVM's index type is a signed 64-bit integer: no buffer can be larger.
MAX_TENSOR_BYTES = (1 << 63) - 1


def input_types(
    inputs: Sequence[onnx.ValueInfoProto], shapes: Mapping[str, Sequence[int]],
    declared: Sequence[onnx.ValueInfoProto],
) -> list[TensorType]:
    """The type of each of `inputs`; `declared` are all the model's graph inputs, by which
    the names in `shapes` are checked (an initializer-backed one may be bound too)."""
    unknown = sorted(set(shapes) - {i.name for i in declared})
    if unknown:
        raise ModelError(f"input_shapes names {', '.join(map(repr, unknown))}, which the model does not take "
                         f"as input; its inputs are {', '.join(repr(i.name) for i in inputs) or 'none'}")
    types, unbound = [], []
    for info in inputs:
        dtype, dims = _dtype(info), _dims(info)
        if info.name not in shapes and any(isinstance(d, str) for d in dims):
            unbound.append((info.name, dims))
            continue
        shape = _bind(info.name, dims, shapes[info.name]) if info.name in shapes else _non_negative(info.name, dims)
        types.append(check_size(TensorType(shape, dtype), f"graph input '{info.name}'"))
    if unbound:
        raise ModelError(_unbound_message(unbound))
    return types


def check_size(tensor_type: TensorType, what: str) -> TensorType:
    """`tensor_type` if a buffer of it can exist; huge dims, pads or kernels make ones that cannot."""
    if tensor_type.nbytes > MAX_TENSOR_BYTES:
        raise ModelError(f"{what} would be {tensor_type}, {tensor_type.nbytes:.3g} bytes, more than a 64-bit index "
                         "can address, so no --memory-limit admits it; check the input shape and the pads, strides "
                         "and kernel sizes")
    return tensor_type


def _dtype(info: onnx.ValueInfoProto) -> DType:
    kind = info.type.WhichOneof("value")
    if kind is None:
        raise ModelError(f"graph input '{info.name}' has no type; declare it as a tensor")
    if kind != "tensor_type":
        raise UnsupportedError(f"graph input '{info.name}' is a {kind.removesuffix('_type').replace('_', ' ')}, "
                               "not a dense tensor; cnncompile compiles tensor inputs only")
    elem_type = info.type.tensor_type.elem_type
    try:
        return DType.of(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() \
            else str(elem_type)
        raise UnsupportedError(f"graph input '{info.name}' has element type {name}, which cnncompile does not "
                               f"support; use one of {', '.join(d.value for d in DType)}") from None


def _dims(info: onnx.ValueInfoProto) -> list[Dim]:
    """The declared dims (onnx's checker has made sure there is a shape)."""
    return [str(d.dim_value) if d.HasField("dim_value") and d.dim_value == ANY_SIZE else
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in info.type.tensor_type.shape.dim]


def _non_negative(name: str, dims: Sequence[int]) -> tuple[int, ...]:
    """Zero-sized dims are legal ONNX (empty tensors); negative ones are not."""
    bad = [(i, d) for i, d in enumerate(dims) if d < 0]
    if bad:
        where = ", ".join(f"dim {i} is {d}" for i, d in bad)
        raise ModelError(f"graph input '{name}' {list(dims)}: {where}; a dim is a size, so fix the model's "
                         "input shape")
    return tuple(dims)


def _bind(name: str, declared: list[Dim], given: Sequence[int]) -> tuple[int, ...]:
    """The caller's shape for an input, checked against what the model declares."""
    given = tuple(given)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in given):
        raise ModelError(f"input_shapes['{name}'] = {given}: every dim must be a non-negative integer")
    if len(given) != len(declared):
        raise ModelError(f"input_shapes['{name}'] = {given} has rank {len(given)}, but the model declares "
                         f"'{name}' as {_format(declared)} (rank {len(declared)})")
    clash = [i for i, (g, d) in enumerate(zip(given, declared)) if isinstance(d, int) and d != 0 and g != d]
    if clash:
        raise ModelError(f"input_shapes['{name}'] = {given} disagrees with the model's static dims "
                         f"{_format(declared)} at dim {', '.join(map(str, clash))}; only dynamic dims (a name, "
                         "'?', -1 or 0) can be bound")
    return given


def _unbound_message(unbound: list[tuple[str, list[Dim]]]) -> str:
    listed, examples, flags = [], [], []
    for name, dims in unbound:
        dynamic = ", ".join(f"dim {i} '{d}'" for i, d in enumerate(dims) if isinstance(d, str))
        listed.append(f"'{name}' {_format(dims)} ({dynamic})")
        example = [d if isinstance(d, int) else 1 for d in dims]
        examples.append(f"'{name}': {tuple(example)}")
        flags.append(f"--input-shape {name}={'x'.join(map(str, example))}")
    return (f"dynamic dims (a name, '?' or -1 in the model; a 0 too, unless it is an empty axis) must be bound "
            f"with --input-shape NAME=AxBxC before compiling: {'; '.join(listed)}; bind every one, e.g. "
            f"input_shapes={{{', '.join(examples)}}} or {' '.join(flags)} (1 stands for each dynamic dim; "
            "put the sizes you will run with)")


def _format(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"
