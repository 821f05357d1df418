"""Export: IR -> ONNX that passes the checker, round-trips, and runs in onnxruntime."""

import numpy as np
import onnx
import pytest

import cnncompile
from cnncompile import Graph, TensorType
from cnncompile.frontends.onnx_export import save_onnx, to_onnx
from cnncompile.numerics import relative_error
from cnncompile.ops import REGISTRY
from cnncompile.ops.resize import ResizeMode
from cnncompile.ops.tensor import PadMode
from cnncompile.tools.models import light_model_path, random_inputs
from cnncompile.tools.weights import randomize_weights
from onnx_harness import run_ort


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert str(a) == str(b)
    constants_b = {v.name: array for v, array in b.constants.items()}
    for value, array in a.constants.items():
        np.testing.assert_array_equal(array, constants_b[value.name])


def roundtrip(graph: Graph) -> onnx.ModelProto:
    model = to_onnx(graph)
    assert_same_graph(graph, cnncompile.load_onnx(model))
    return model


def attribute_heavy_graph() -> Graph:
    """Every kind of attribute that ONNX takes as an input, plus enums and dtypes."""
    g = Graph("attrs")
    x = g.add_input("x", TensorType((2, 3, 6, 8)))
    (p,) = g.add_node(REGISTRY["Pad"], [x], pads=(0, 0, 1, 2, 0, 0, 1, 0), mode=PadMode.REFLECT)
    (c,) = g.add_node(REGISTRY["Clip"], [p], min=-0.5, max=0.75)
    (r,) = g.add_node(REGISTRY["Resize"], [c], scales=(1.0, 1.0, 2.0, 0.5),
                      mode=ResizeMode.LINEAR)
    (s,) = g.add_node(REGISTRY["Slice"], [r], starts=(1, 0), ends=(14, 100), axes=(2, 3), steps=(2, 1))
    parts = g.add_node(REGISTRY["Split"], [s], axis=1, split=(1, 2))
    (m,) = g.add_node(REGISTRY["ReduceMean"], [parts[1]], axes=(1,), keepdims=0)
    (u,) = g.add_node(REGISTRY["Unsqueeze"], [m], axes=(1,))
    (q,) = g.add_node(REGISTRY["Reshape"], [u], shape=(2, -1))
    (k,) = g.add_node(REGISTRY["Cast"], [q], to=cnncompile.DType.FLOAT64)
    g.mark_outputs(parts[0], k)
    return g


def test_promoted_attributes_become_initializers_again():
    graph = attribute_heavy_graph()
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 8)).astype(np.float32)
    model = roundtrip(graph)
    ours = cnncompile.run_reference(graph, {"x": x})
    for (name, out), theirs in zip(ours.items(), run_ort(model, {"x": x})):
        assert relative_error(theirs, out) <= 1e-5, name
    ops = {n.op_type: n for n in model.graph.node}
    assert len(ops["Reshape"].input) == 2 and len(ops["Resize"].input) == 3 and ops["Resize"].input[1] == ""
    assert {a.name for a in ops["Pad"].attribute} == {"mode"}


@pytest.mark.parametrize("name", ["resnet50", "shufflenet"])
def test_light_models_round_trip(name):
    """The exported file computes what the original does, in the same engine."""
    original = randomize_weights(onnx.load(str(light_model_path(name))))
    graph = cnncompile.load_onnx(original)
    inputs = random_inputs(graph)
    for before, after in zip(run_ort(original, inputs), run_ort(roundtrip(graph), inputs)):
        assert relative_error(after, before) <= 1e-5


def test_save_is_atomic_and_checked(tmp_path):
    graph = attribute_heavy_graph()
    path = tmp_path / "model.onnx"
    save_onnx(graph, path)
    onnx.checker.check_model(str(path), full_check=True)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_save_into_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(cnncompile.CnnCompileError, match="does not exist"):
        save_onnx(attribute_heavy_graph(), tmp_path / "nowhere" / "model.onnx")
