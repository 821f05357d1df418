"""Random weights for models that ship placeholders.

onnx's light test models carry constant weights (ConstantOfShape nodes filling every
tensor with one value), which would hide almost any numerical bug. Before a numerical
comparison their weights are replaced by random ones, initialised by role: He-normal for
conv and dense weights, scales near 1 and small shifts for normalisation and biases.
Random BatchNorm statistics do not normalise anything, so a deep residual network's
activations would still grow block by block until its softmax saturates and every
comparison passes trivially; `calibrate=True` therefore sets each BatchNorm's mean and
variance to the statistics of the activations it actually receives on a random input.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

LOOK_THROUGH = frozenset({"Unsqueeze", "Squeeze", "Reshape", "Flatten", "Transpose", "Identity", "Cast"})
SCALE_ROLES = {("BatchNormalization", 1), ("BatchNormalization", 4), ("InstanceNormalization", 1),
               ("LayerNormalization", 1), ("Mul", 0), ("Mul", 1), ("Div", 1)}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    users: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            users.setdefault(name, []).append((node, position))
    return users


def _role(name: str, users: dict[str, list[tuple[onnx.NodeProto, int]]]) -> tuple[str, int, onnx.NodeProto | None]:
    """The op and input position that finally consume `name`, looking through reshapes."""
    seen = set()
    while name in users and name not in seen:
        seen.add(name)
        node, position = users[name][0]
        if node.op_type in LOOK_THROUGH and position == 0:
            name = node.output[0]
            continue
        return node.op_type, position, node
    return "", -1, None


def _fan_in(shape: tuple[int, ...], op: str, node: onnx.NodeProto | None) -> int:
    if op == "Gemm" and node is not None:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return shape[1] if trans_b and len(shape) > 1 else shape[0]
    if op == "MatMul":
        return shape[-2] if len(shape) >= 2 else shape[0]
    return max(math.prod(shape[1:]), 1)


def _draw(rng: np.random.Generator, shape: tuple[int, ...], op: str, position: int, node) -> np.ndarray:
    """Float32 draws (three times faster than float64 ones on VGG-sized tensors)."""
    if op in ("Conv", "ConvTranspose", "Gemm", "MatMul") and position == 1:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / _fan_in(shape, op, node)))
    if (op, position) in SCALE_ROLES:
        return rng.random(shape, dtype=np.float32) + np.float32(0.5)
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)


def _placeholders(model: onnx.ModelProto) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every floating weight: initializers, and ConstantOfShape outputs whose shape is one.

    The ConstantOfShape nodes are removed; their outputs become initializers below.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    slots = {}
    kept = []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            elem = value.data_type if value is not None else onnx.TensorProto.FLOAT
            slots[node.output[0]] = (shape, helper.tensor_dtype_to_np_dtype(elem))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    for tensor in graph.initializer:
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
        if np.issubdtype(dtype, np.floating):
            slots[tensor.name] = (tuple(tensor.dims), dtype)
    return slots


def randomize_weights(model: onnx.ModelProto, seed: int = 0, calibrate: bool = True) -> onnx.ModelProto:
    """A copy of `model` whose floating-point weights are random and role-appropriate."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    slots = _placeholders(model)
    users = _consumers(graph)
    used = set(users) | {o.name for o in graph.output}
    rng = np.random.default_rng(seed)
    fresh = {}
    for name, (shape, dtype) in slots.items():
        if name in used:
            op, position, node = _role(name, users)
            fresh[name] = numpy_helper.from_array(_draw(rng, shape, op, position, node).astype(dtype), name)
    kept = [t for t in graph.initializer if t.name in used and t.name not in fresh]
    declared = {i.name for i in graph.input}
    initialized = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name in used or i.name not in initialized]
    if model.ir_version < 4:  # before IR 4 every initializer must also be a graph input
        inputs += [helper.make_tensor_value_info(n, t.data_type, t.dims) for n, t in fresh.items() if n not in declared]
    del graph.initializer[:], graph.input[:]
    graph.initializer.extend([*kept, *fresh.values()])
    graph.input.extend(inputs)
    if calibrate and any(node.op_type == "BatchNormalization" for node in graph.node):
        _calibrate_batchnorm(model, seed)
    return model


def _calibrate_batchnorm(model: onnx.ModelProto, seed: int) -> None:
    """Set every BatchNorm's mean/var initializers to the batch statistics of its input."""
    from cnncompile.backends.reference import run_reference
    from cnncompile.frontends.onnx import load_onnx
    from cnncompile.ir.types import DType
    from cnncompile.ops.norm import BatchNormalization
    from cnncompile.tools.models import random_inputs

    graph = load_onnx(model)
    measured: dict[str, np.ndarray] = {}
    mean_at, var_at = BatchNormalization.operand_index("input_mean"), BatchNormalization.operand_index("input_var")

    def hook(node, args):
        if node.op is not BatchNormalization or not all(graph.is_constant(node.inputs[i]) for i in (mean_at, var_at)):
            return None
        x = args[0]
        axes = (0, *range(2, x.ndim))
        args = list(args)
        args[mean_at], args[var_at] = x.mean(axis=axes), x.var(axis=axes)
        measured[node.inputs[mean_at].name], measured[node.inputs[var_at].name] = args[mean_at], args[var_at]
        return args

    run_reference(graph, random_inputs(graph, seed), dtype=DType.FLOAT64, hook=hook)
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name in measured:
            array = measured[tensor.name].astype(numpy_helper.to_array(tensor).dtype)
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(array, tensor.name))
