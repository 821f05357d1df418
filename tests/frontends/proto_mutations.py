"""Structured mutations of a small valid ONNX model, for fuzzing the importer.

Byte-level corruption mostly yields protobufs that do not decode; these mutations keep
the file decodable and break what the importer must check: attribute values and types,
dims, element types, initializer sizes, opsets and domains, node wiring, external data.
Each mutation draws from a `random.Random`, so hypothesis (`st.randoms`) and the atheris
benchmark (a seed per input) drive the same code, and each returns a line saying what it
did, which is what a failing example reports.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

X_SHAPE = (1, 3, 8, 8)
EXTERNAL_FILE = "weights.bin"

INTERESTING_INTS = (-(1 << 63), -(1 << 31), -3, -1, 0, 1, 2, 3, 5, 8, 64, 1 << 20, 1 << 31, (1 << 63) - 1)
ATTRIBUTE_NAMES = ("pads", "strides", "kernel_shape", "dilations", "group", "auto_pad", "alpha", "beta",
                   "transA", "transB", "axis", "ceil_mode", "storage_order", "epsilon", "value", "to")
OP_TYPES = ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "Relu", "Add", "Flatten", "Reshape",
            "Concat", "BatchNormalization", "Softmax", "Identity", "Transpose", "Pad", "Resize", "Split",
            "ConvTranspose", "MatMul", "NoSuchOp")
DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.example", "ai.onnx\n")
STRINGS = ("", "NOTSET", "SAME_UPPER", "VALID", "x", "\x00", "é", "9" * 30)
EXTERNAL_KEYS = ("location", "offset", "length", "checksum")
EXTERNAL_VALUES = ("-1", "0", "1", "1e3", "0x10", " 4", "+4", "1_0", "9" * 25, "-" + "9" * 25, "", "abc",
                   EXTERNAL_FILE, "../" + EXTERNAL_FILE, "/etc/passwd", "missing.bin", ".")


def valid_model() -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> Flatten -> Gemm, the Gemm's weight large enough to be split out."""
    rng = np.random.default_rng(0)

    def init(name: str, shape: tuple[int, ...]) -> TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["c"], ["r"], name="relu1"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flat1", axis=1),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["y"], name="fc", transB=1, alpha=1.0, beta=1.0),
    ]
    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, X_SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 5))],
        [init("w", (4, 3, 3, 3)), init("b", (4,)), init("wg", (5, 64)), init("bg", (5,))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def externalize(model: onnx.ModelProto, name: str, folder: Path) -> None:
    """Move initializer `name`'s bytes to EXTERNAL_FILE in `folder`, as onnx.save would."""
    tensor = next(t for t in model.graph.initializer if t.name == name)
    (folder / EXTERNAL_FILE).write_bytes(tensor.raw_data)
    onnx.external_data_helper.set_external_data(tensor, EXTERNAL_FILE, offset=0, length=len(tensor.raw_data))
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL


def _int(rng: random.Random) -> int:
    return rng.choice(INTERESTING_INTS) if rng.random() < 0.7 else rng.randint(-4, 16)


def _ints(rng: random.Random) -> list[int]:
    return [_int(rng) for _ in range(rng.randint(0, 5))]


def _any_value(rng: random.Random):
    """A value of a random attribute type (make_attribute infers the type from it)."""
    kind = rng.randrange(6)
    if kind == 0:
        return _int(rng)
    if kind == 1:
        return _ints(rng) or [0]
    if kind == 2:
        return rng.choice((0.0, -1.0, 1e30, float("nan"), float("inf"), 0.5))
    if kind == 3:
        return rng.choice(STRINGS)
    if kind == 4:
        return [rng.choice((0.5, -2.0, float("nan")))] * rng.randint(1, 4)
    return numpy_helper.from_array(np.arange(rng.randint(0, 4), dtype=np.int64), "t")


def _node(model: onnx.ModelProto, rng: random.Random) -> onnx.NodeProto | None:
    return rng.choice(model.graph.node) if model.graph.node else None


def attribute_value(model, rng):
    """Keep an attribute's name and type, change its value (huge, negative, zero, wrong length)."""
    node = _node(model, rng)
    if node is None or not node.attribute:
        return "no attribute to change"
    attr = rng.choice(node.attribute)
    if attr.type == onnx.AttributeProto.INTS:
        del attr.ints[:]
        attr.ints.extend(_ints(rng))
    elif attr.type == onnx.AttributeProto.INT:
        attr.i = _int(rng)
    elif attr.type == onnx.AttributeProto.FLOAT:
        attr.f = rng.choice((0.0, -1.0, 1e38, float("nan"), float("inf")))
    else:
        attr.s = rng.choice(STRINGS).encode()
    return f"{node.name}.{attr.name} value -> {helper.get_attribute_value(attr)!r}"


def attribute_type(model, rng):
    """Replace an attribute by one of the same name and another type, or add one."""
    node = _node(model, rng)
    if node is None:
        return "no node"
    name = rng.choice([a.name for a in node.attribute] + list(ATTRIBUTE_NAMES))
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)
    value = _any_value(rng)
    node.attribute.append(helper.make_attribute(name, value))
    return f"{node.name}.{name} -> {value!r}"


def attribute_drop(model, rng):
    node = _node(model, rng)
    if node is None or not node.attribute:
        return "no attribute to drop"
    index = rng.randrange(len(node.attribute))
    name = node.attribute[index].name
    del node.attribute[index]
    return f"{node.name}.{name} dropped"


def _value_info(model, rng) -> onnx.ValueInfoProto | None:
    infos = list(model.graph.input) + list(model.graph.output)
    return rng.choice(infos) if infos else None


def value_dims(model, rng):
    """A graph input's or output's dims: one changed (zero, negative, huge, symbolic), added or removed."""
    info = _value_info(model, rng)
    if info is None:
        return "no value"
    dims = info.type.tensor_type.shape.dim
    action = rng.randrange(4)
    if action == 0 and dims:
        dim = rng.choice(dims)
        dim.dim_value = _int(rng)
    elif action == 1 and dims:
        rng.choice(dims).dim_param = rng.choice(("N", "", "?"))
    elif action == 2:
        dims.add().dim_value = _int(rng)
    elif dims:
        del dims[rng.randrange(len(dims))]
    return f"{info.name} dims -> {[d.dim_value if d.HasField('dim_value') else d.dim_param for d in dims]}"


def value_dtype(model, rng):
    info = _value_info(model, rng)
    if info is None:
        return "no value"
    info.type.tensor_type.elem_type = rng.randint(0, 26)
    return f"{info.name} elem_type -> {info.type.tensor_type.elem_type}"


def _initializer(model, rng) -> TensorProto | None:
    return rng.choice(model.graph.initializer) if model.graph.initializer else None


def initializer_dtype(model, rng):
    tensor = _initializer(model, rng)
    if tensor is None:
        return "no initializer"
    tensor.data_type = rng.randint(0, 26)
    return f"{tensor.name} data_type -> {tensor.data_type}"


def initializer_dims(model, rng):
    """An initializer's dims no longer match its data: one dim changed, added or removed."""
    tensor = _initializer(model, rng)
    if tensor is None:
        return "no initializer"
    action = rng.randrange(3)
    if action == 0 and tensor.dims:
        tensor.dims[rng.randrange(len(tensor.dims))] = _int(rng)
    elif action == 1:
        tensor.dims.append(_int(rng))
    elif tensor.dims:
        del tensor.dims[rng.randrange(len(tensor.dims))]
    return f"{tensor.name} dims -> {list(tensor.dims)}"


def initializer_data(model, rng):
    """An initializer's data shortened, lengthened, or moved to a typed field of another size."""
    tensor = _initializer(model, rng)
    if tensor is None:
        return "no initializer"
    if tensor.data_location == TensorProto.EXTERNAL:
        return external_data(model, rng, tensor)
    action = rng.randrange(3)
    if action == 0:
        tensor.raw_data = tensor.raw_data[: rng.randrange(len(tensor.raw_data) + 1)]
    elif action == 1:
        tensor.raw_data += bytes(rng.randint(1, 9))
    else:
        tensor.ClearField("raw_data")
        tensor.float_data.extend([1.0] * rng.randint(0, 8))
    return f"{tensor.name} data -> {len(tensor.raw_data)} raw bytes, {len(tensor.float_data)} floats"


def external_data(model, rng, tensor: TensorProto | None = None):
    """An external tensor's location, offset or length set to something odd."""
    externals = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    tensor = tensor or (rng.choice(externals) if externals else None)
    if tensor is None:
        return "no external initializer"
    key, value = rng.choice(EXTERNAL_KEYS), rng.choice(EXTERNAL_VALUES + tuple(map(str, INTERESTING_INTS)))
    entry = next((e for e in tensor.external_data if e.key == key), None) or tensor.external_data.add()
    entry.key, entry.value = key, value
    return f"{tensor.name} external {key} -> {value!r}"


def opset(model, rng):
    """The ai.onnx opset changed, a second or unknown domain imported, or every import dropped."""
    action = rng.randrange(3)
    if action == 0 and model.opset_import:
        model.opset_import[0].version = rng.choice((0, 1, 6, 7, 9, 10, 12, 13, 21, 22, 30, 999, -1, (1 << 63) - 1))
    elif action == 1:
        model.opset_import.append(helper.make_opsetid(rng.choice(DOMAINS), _int(rng)))
    else:
        del model.opset_import[:]
    return f"opsets -> {[(o.domain, o.version) for o in model.opset_import]}"


def node_domain(model, rng):
    node = _node(model, rng)
    if node is None:
        return "no node"
    node.domain = rng.choice(DOMAINS)
    return f"{node.name} domain -> {node.domain!r}"


def node_op(model, rng):
    node = _node(model, rng)
    if node is None:
        return "no node"
    node.op_type = rng.choice(OP_TYPES)
    return f"{node.name} op -> {node.op_type}"


def node_wiring(model, rng):
    """A node input or output renamed (to another value, a new name, or ''), dropped or added."""
    node = _node(model, rng)
    if node is None:
        return "no node"
    names = [v for n in model.graph.node for v in list(n.input) + list(n.output)] + ["x", "", "nowhere"]
    field = node.input if rng.random() < 0.6 else node.output
    action = rng.randrange(3)
    if action == 0 and field:
        field[rng.randrange(len(field))] = rng.choice(names)
    elif action == 1 and field:
        del field[rng.randrange(len(field))]
    else:
        field.append(rng.choice(names))
    return f"{node.name} inputs {list(node.input)} outputs {list(node.output)}"


def graph_structure(model, rng):
    """A node removed, duplicated, or two swapped; or the ir_version changed."""
    nodes = model.graph.node
    action = rng.randrange(4)
    if action == 0 and nodes:
        del nodes[rng.randrange(len(nodes))]
    elif action == 1 and nodes:
        nodes.add().CopyFrom(rng.choice(nodes))
    elif action == 2 and len(nodes) > 1:
        i, j = rng.sample(range(len(nodes)), 2)
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(nodes[i]), b.CopyFrom(nodes[j])
        nodes[i].CopyFrom(b), nodes[j].CopyFrom(a)
    else:
        model.ir_version = rng.choice((0, 1, 3, 7, 10, 11, 99, -1))
    return f"nodes -> {[n.op_type for n in nodes]}, ir_version {model.ir_version}"


MUTATIONS: tuple[Callable[[onnx.ModelProto, random.Random], str], ...] = (
    attribute_value, attribute_type, attribute_drop, value_dims, value_dtype, initializer_dtype,
    initializer_dims, initializer_data, external_data, opset, node_domain, node_op, node_wiring, graph_structure,
)
# Mutations that leave most models importable, so compiling them gets further than the importer.
MILD_MUTATIONS = (attribute_value, attribute_drop, value_dims, initializer_data)


def mutate(model: onnx.ModelProto, rng: random.Random, count: int,
           mutations=MUTATIONS) -> list[str]:
    """Apply `count` mutations drawn from `mutations` to `model` in place; what each did."""
    return [rng.choice(mutations)(model, rng) for _ in range(count)]
