"""Run one ONNX node through onnxruntime and through cnncompile's reference, and compare.

onnxruntime is the independent oracle: the expected values never come from cnncompile.
Activations are graph inputs; `constants` become initializers (weights, and the inputs
cnncompile keeps as attributes, such as Reshape's shape).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

import cnncompile
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error

OPSET = 21


def single_node_model(
    op_type: str,
    inputs: Mapping[str, np.ndarray],
    constants: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping | None = None,
    input_order: list[str] | None = None,
    n_outputs: int = 1,
    opset: int = OPSET,
) -> onnx.ModelProto:
    constants = dict(constants or {})
    order = input_order or [*inputs, *constants]
    outputs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, order, outputs, **dict(attrs or {}))
    graph = helper.make_graph(
        [node],
        op_type.lower(),
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return onnx.shape_inference.infer_shapes(model)


def run_ort(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, dict(inputs))


def check_node(
    op_type: str,
    inputs: Mapping[str, np.ndarray],
    constants: Mapping[str, np.ndarray] | None = None,
    tol: float = 1e-5,
    n_outputs: int = 1,
    input_order: list[str] | None = None,
    opset: int = OPSET,
    **attrs,
) -> list[np.ndarray]:
    """Assert the reference (float64 and float32) matches onnxruntime; return ORT's outputs."""
    model = single_node_model(op_type, inputs, constants, attrs, input_order, n_outputs, opset)
    expected = run_ort(model, inputs)
    graph = cnncompile.load_onnx(model)
    cnncompile.verify(graph)
    for node in graph.nodes:
        in_types, out_types = [v.type for v in node.inputs], [v.type for v in node.outputs]
        assert node.op.flops(in_types, out_types, node.attrs) >= 0
        assert node.op.bytes_moved(in_types, out_types) >= sum(t.nbytes for t in out_types)
    for dtype in (DType.FLOAT64, DType.FLOAT32):
        got = cnncompile.run_reference(graph, inputs, dtype=dtype)
        for i, want in enumerate(expected):
            out = got[f"out{i}"]
            assert out.shape == want.shape, f"{op_type} {attrs} out{i}: shape {out.shape} != ORT {want.shape}"
            error = relative_error(out, want)
            assert error <= tol, f"{op_type} {attrs} out{i} ({dtype.value}): error {error:.3g} > {tol}"
    return expected


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int | None = None) -> np.ndarray:
    """He-initialised float32 weights, so activations stay O(1)."""
    fan_in = fan_in or int(np.prod(shape[1:])) or 1
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
