"""Initializers as arrays, every size the model declares checked before a byte is read.

A TensorProto states its size twice: its dims and element type, and the data it holds
(raw bytes, a typed list, or an external file's offset and length). numpy would report a
disagreement as a reshape error, and an external length far past the file's end as a
MemoryError or OverflowError from `read`, so the sizes are compared here first, in
Python ints (dims may be anything up to 2**63), and a disagreement is a ModelError that
names the tensor, the declared and the actual size.

External data is read only from inside the model's directory: a `location` that is
absolute or resolves elsewhere (through `..` or a symbolic link) is refused.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from cnncompile.errors import ModelError, UnsupportedError
from cnncompile.ir.types import DType

# onnx writes offset and length as plain decimal strings; int() would also take ' 4', '+4' and '1_0'.
DECIMAL = re.compile(r"[0-9]+")


def check_tensor(tensor: onnx.TensorProto) -> None:
    """Refuse an initializer whose dims, element type or data size cannot make an array."""
    _nbytes(tensor)
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return
    dtype, count = _dtype(tensor), _elements(tensor)
    if tensor.HasField("raw_data"):
        held, needed, unit = len(tensor.raw_data), _packed(count, dtype), "bytes of raw_data"
    else:  # a sub-byte type packs its list as it packs raw_data, one byte per entry
        field = helper.tensor_dtype_to_field(tensor.data_type)
        held, needed = len(getattr(tensor, field)), _packed(count, dtype) if dtype.bits < 8 else count
        unit = f"values in {field}"
    if held != needed:
        raise ModelError(f"{_where(tensor)} holds {held} {unit}, but its dims {_dims(tensor)} of "
                         f"{dtype.value} need {needed}; re-export the model, its weights are damaged")


def tensor_array(tensor: onnx.TensorProto) -> np.ndarray:
    """An inline initializer's array; a malformed one is a ModelError."""
    check_tensor(tensor)
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError) as err:
        raise ModelError(f"{_where(tensor)} is malformed: {first_line(err)}") from None


def read_external(tensor: onnx.TensorProto, base: Path | None) -> np.ndarray:
    """An externally stored initializer's array, read from inside the model's directory."""
    check_tensor(tensor)
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    where = _where(tensor)
    if base is None:
        raise ModelError(f"{where} keeps its data in the external file '{location}'; pass the model's path "
                         "instead of a ModelProto so the file can be found beside it")
    path = _inside(base, location, where)
    offset = _decimal(info, "offset", where, default="0")
    size = path.stat().st_size
    if offset > size:
        raise ModelError(f"{where}: external data offset {offset} is past the end of '{location}', which holds "
                         f"{size} bytes; the model and its data file do not belong together")
    length = _decimal(info, "length", where, default=str(size - offset))
    if offset + length > size:
        raise ModelError(f"{where}: external file '{location}' holds {size - offset} bytes at offset {offset} "
                         f"(it is {size} bytes long), not the {length} the model declares; the model and its "
                         "data file do not belong together")
    needed = _nbytes(tensor)
    if length != needed:
        raise ModelError(f"{where}: external data in '{location}' is {length} bytes long, but its dims "
                         f"{_dims(tensor)} of {_dtype(tensor).value} need {needed}")
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read(length)
    except OSError as err:
        raise ModelError(f"{where}: cannot read external file '{location}' ({first_line(err)})") from None
    if len(data) != length:
        raise ModelError(f"{where}: external file '{location}' shrank while it was read ({len(data)} of "
                         f"{length} bytes at offset {offset})")
    loaded = onnx.TensorProto()
    loaded.CopyFrom(tensor)
    loaded.ClearField("external_data")
    loaded.data_location = onnx.TensorProto.DEFAULT
    loaded.raw_data = data
    return tensor_array(loaded)


def _inside(base: Path, location: str, where: str) -> Path:
    """The external file, which must be a file inside `base`."""
    if not location or os.path.isabs(location):
        raise ModelError(f"{where}: external data location '{location}' must be a path relative to the "
                         f"model's directory '{base}'")
    try:
        path = (base / location).resolve()
        is_file = path.is_file()
    except (OSError, ValueError, RuntimeError) as err:  # a NUL byte, a name too long, a symlink loop
        raise ModelError(f"{where}: external data location '{location}' is not a usable path "
                         f"({err.__class__.__name__}: {first_line(err)})") from None
    if not path.is_relative_to(base):
        raise ModelError(f"{where}: external data location '{location}' resolves to '{path}', outside the "
                         f"model's directory '{base}'; external data is read only from inside it")
    if not is_file:
        problem = "is not a file" if path.exists() else "does not exist"
        raise ModelError(f"{where}: external data file '{location}' {problem} in '{base}'")
    return path


def _decimal(info: dict[str, str], key: str, where: str, default: str) -> int:
    text = info.get(key, default)
    if not DECIMAL.fullmatch(text):
        raise ModelError(f"{where}: external data {key} '{text}' is not a non-negative decimal integer")
    return int(text)


def _nbytes(tensor: onnx.TensorProto) -> int:
    return _packed(_elements(tensor), _dtype(tensor))


def _packed(count: int, dtype: DType) -> int:
    """The bytes ONNX stores `count` elements of `dtype` in: int4, float4 and int2 pack 2 or 4 to a byte."""
    return -(-count * dtype.bits // 8)


def _elements(tensor: onnx.TensorProto) -> int:
    negative = [f"dim {i} is {d}" for i, d in enumerate(tensor.dims) if d < 0]
    if negative:
        raise ModelError(f"{_where(tensor)} has dims {_dims(tensor)}: {', '.join(negative)}; a dim is a size")
    return math.prod(tensor.dims)


def _dtype(tensor: onnx.TensorProto) -> DType:
    try:
        return DType.of(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    except (KeyError, ValueError, TypeError):
        code = tensor.data_type
        name = onnx.TensorProto.DataType.Name(code) if code in onnx.TensorProto.DataType.values() else str(code)
        raise UnsupportedError(f"{_where(tensor)} has element type {name}, which cnncompile does not support; "
                               f"use one of {', '.join(d.value for d in DType)}") from None


def _dims(tensor: onnx.TensorProto) -> str:
    return "x".join(map(str, tensor.dims)) or "[] (a scalar)"


def _where(tensor: onnx.TensorProto) -> str:
    return f"initializer '{tensor.name}'"


def first_line(err: Exception) -> str:
    """An exception's text cut to one line, so the CLI can print it as one."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else err.__class__.__name__
