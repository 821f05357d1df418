"""Exporters' shape sub-graphs fold to constants at import.

PyTorch writes `x.view(x.size(0), -1)` as Shape -> Gather(0) -> Unsqueeze -> Concat([-1]) ->
Reshape, with the small tensors as Constant nodes; with static input shapes all of it but
the Reshape is known at compile time, so none of it should reach the IR.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error
from onnx_harness import he_normal, run_ort

BATCH, CHANNELS, SIDE, CLASSES = 2, 3, 4, 5
FEATURES = CHANNELS * SIDE * SIDE


def constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


def exported_model(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [
        constant("zero", np.array(0, dtype=np.int64)),
        constant("axes0", np.array([0], dtype=np.int64)),
        constant("minus_one", np.array([-1], dtype=np.int64)),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch_1d"]),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["viewed"]),
        helper.make_node("Gemm", ["viewed", "w1", "b1"], ["y_view"], transB=1),
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w2", "b2"], ["y_flat"], alpha=0.5, beta=2.0),
    ]
    initializers = [
        numpy_helper.from_array(he_normal(rng, (CLASSES, FEATURES)), "w1"),
        numpy_helper.from_array(rng.standard_normal(CLASSES).astype(np.float32), "b1"),
        numpy_helper.from_array(he_normal(rng, (FEATURES, CLASSES), fan_in=FEATURES), "w2"),
        numpy_helper.from_array(rng.standard_normal(CLASSES).astype(np.float32), "b2"),
    ]
    graph = helper.make_graph(
        nodes, "exported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (BATCH, CHANNELS, SIDE, SIDE))],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, (BATCH, CLASSES)) for n in ("y_view", "y_flat")],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_shape_subgraph_folds_and_matches_onnxruntime():
    rng = np.random.default_rng(0)
    model = exported_model(rng)
    graph = cnncompile.load_onnx(model)
    cnncompile.verify(graph)
    assert [n.op.name for n in graph.nodes] == ["Reshape", "Gemm", "Flatten", "Gemm"]
    reshape = graph.nodes[0]
    assert reshape.attrs.shape == (BATCH, -1)
    x = rng.standard_normal((BATCH, CHANNELS, SIDE, SIDE)).astype(np.float32)
    expected = run_ort(model, {"x": x})
    for dtype in (DType.FLOAT64, DType.FLOAT32):
        got = cnncompile.run_reference(graph, {"x": x}, dtype=dtype)
        for name, want in zip(("y_view", "y_flat"), expected):
            assert got[name].shape == want.shape
            assert relative_error(got[name], want) <= 1e-5, (name, dtype)


def test_binding_a_dynamic_batch_folds_the_same_subgraph():
    model = exported_model(np.random.default_rng(1))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    graph = cnncompile.load_onnx(model, input_shapes={"x": (7, CHANNELS, SIDE, SIDE)})
    assert graph.nodes[0].attrs.shape == (7, -1)
    assert graph.outputs[0].type.shape == (7, CLASSES)
