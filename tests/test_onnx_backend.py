"""cnncompile.onnx_backend: the onnx.backend.base API over the reference and TVM backends.

onnxruntime is the oracle. Besides the API itself, these pin what the static IR asks of
it: results in the declared dtypes, and one compilation per binding of dynamic dims and
compile-time input values (a Reshape whose shape arrives as a graph input).
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnncompile.backends.tvm.target import gpu_visible
from cnncompile.errors import CnnCompileError, ModelError, UnsupportedError
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error, tolerance
from cnncompile.onnx_backend import CnnCompileBackend, compile_time_inputs, prepare, run_node, supports_device
from onnx_harness import he_normal, run_ort


def conv_model(rng: np.random.Generator, batch: int | str = 2, elem: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """x -> Conv(3x3, pad 1) -> Relu -> y, plus the input's shape as a second (int64) output."""
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
        helper.make_node("Shape", ["x"], ["s"]),
    ]
    graph = helper.make_graph(
        nodes, "conv",
        [helper.make_tensor_value_info("x", elem, [batch, 3, 6, 6])],
        [helper.make_tensor_value_info("y", elem, [batch, 4, 6, 6]),
         helper.make_tensor_value_info("s", TensorProto.INT64, [4])],
        [numpy_helper.from_array(he_normal(rng, (4, 3, 3, 3)).astype(dtype), "w"),
         numpy_helper.from_array(rng.standard_normal(4).astype(dtype), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


def reshape_model() -> onnx.ModelProto:
    """Reshape whose target shape is a graph input: known only when the model runs."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"]), helper.make_node("Relu", ["y"], ["z"])], "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["a", "b"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_prepared_model_matches_onnxruntime_in_declared_dtypes(dtype):
    rng = np.random.default_rng(0)
    model = conv_model(rng)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    want = run_ort(model, {"x": x})
    rep = prepare(model, "CPU", dtype=dtype)
    for got in (rep.run([x]), rep.run({"x": x}), rep.run(x)):
        assert got.y.dtype == np.float32 and got["s"].dtype == np.int64
        assert relative_error(got[0], want[0]) <= tolerance(DType.FLOAT32)
        np.testing.assert_array_equal(got.s, want[1])


def test_float16_model_returns_float16():
    rng = np.random.default_rng(1)
    model = conv_model(rng, elem=TensorProto.FLOAT16)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float16)
    got = CnnCompileBackend.run_model(model, [x])
    assert got.y.dtype == np.float16
    assert relative_error(got.y, run_ort(model, {"x": x})[0]) <= tolerance(DType.FLOAT16)


def test_dynamic_batch_compiles_once_per_shape():
    rng = np.random.default_rng(2)
    model = conv_model(rng, batch="N")
    rep = prepare(model)
    for batch in (1, 3, 1):
        x = rng.standard_normal((batch, 3, 6, 6)).astype(np.float32)
        got, want = rep.run([x]), run_ort(model, {"x": x})
        assert relative_error(got.y, want[0]) <= tolerance(DType.FLOAT32)
        np.testing.assert_array_equal(got.s, [batch, 3, 6, 6])
    assert len(rep.graphs) == 2


def test_compile_time_input_is_bound_by_its_value():
    model = reshape_model()
    assert compile_time_inputs(model.graph) == ["shape"]
    x = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
    rep = prepare(model)
    for shape in ([6, 4], [4, 6], [6, 4]):
        target = np.array(shape, dtype=np.int64)
        got = rep.run([x, target])
        np.testing.assert_array_equal(got.z, np.maximum(x.reshape(shape), 0))
        np.testing.assert_array_equal(got.z, run_ort(model, {"x": x, "shape": target})[0])
    assert len(rep.graphs) == 2


def test_shape_of_an_input_does_not_bind_its_values():
    """Shape reads dims, not values: its operand stays a graph input."""
    graph = helper.make_graph(
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    assert compile_time_inputs(graph) == []


def test_run_node_keeps_attribute_inputs_as_constants():
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode="constant")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    pads = np.array([0, 1, 1, 0], dtype=np.int64)
    (y,) = run_node(node, [x, pads, np.array(-1, dtype=np.float32)])
    np.testing.assert_array_equal(y, np.pad(x, [(0, 1), (1, 0)], constant_values=-1))
    (z,) = run_node(helper.make_node("Relu", ["a"], ["b"]), {"a": -x}, outputs_info=[(np.float32, (2, 3))],
                    opset_version=14)
    np.testing.assert_array_equal(z, np.zeros_like(x))


def test_devices():
    assert supports_device("CPU")
    assert supports_device("CUDA") == supports_device("CUDA:0") == gpu_visible()
    assert not supports_device("TPU") and not supports_device("CPU:x")
    if not gpu_visible():
        with pytest.raises(UnsupportedError, match="device 'CUDA'"):
            prepare(conv_model(np.random.default_rng(4)), "CUDA", engine="tvm")


def test_cuda_needs_the_tvm_engine():
    if gpu_visible():
        with pytest.raises(UnsupportedError, match="engine='tvm'"):
            prepare(conv_model(np.random.default_rng(4)), "CUDA")
    else:
        with pytest.raises(UnsupportedError, match="needs engine='tvm' and a visible CUDA GPU"):
            prepare(conv_model(np.random.default_rng(4)), "CUDA")


def test_tvm_engine_matches_onnxruntime_and_compiles_once_per_batch():
    rng = np.random.default_rng(6)
    model = conv_model(rng, batch="N")
    rep = prepare(model, "CPU", engine="tvm", dtype="float32")
    for batch in (1, 3, 1):
        x = rng.standard_normal((batch, 3, 6, 6)).astype(np.float32)
        want = run_ort(model, {"x": x})
        got = rep.run([x])
        assert relative_error(got.y, want[0]) <= tolerance(DType.FLOAT32)
        np.testing.assert_array_equal(got.s, want[1])
    assert len(rep.compiled) == 2


@pytest.mark.gpu
def test_tvm_engine_on_cuda_matches_onnxruntime():
    rng = np.random.default_rng(7)
    model = conv_model(rng)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    got = prepare(model, "CUDA", engine="tvm").run([x])
    assert relative_error(got.y, run_ort(model, {"x": x})[0]) <= tolerance(DType.FLOAT32)


def test_unknown_engine_is_an_error():
    with pytest.raises(CnnCompileError, match="engine must be one of"):
        prepare(conv_model(np.random.default_rng(8)), engine="tensorrt")


def test_errors_are_cnncompile_errors():
    rng = np.random.default_rng(5)
    model = conv_model(rng)
    with pytest.raises(CnnCompileError, match="dtype must be one of"):
        prepare(model, dtype="float16")
    rep = prepare(model)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    with pytest.raises(ModelError, match="takes 1 input"):
        rep.run([x, x])
    with pytest.raises(ModelError, match="missing input.*unknown input"):
        rep.run({"other": x})
    with pytest.raises(ModelError, match="shape"):
        rep.run([x[:1]])
    with pytest.raises(ModelError, match="takes 2 input"):
        run_node(helper.make_node("Add", ["a", "b"], ["c"]), [x])
    with pytest.raises(ModelError, match="takes 1 input"):
        run_node(helper.make_node("Relu", ["a"], ["b"]), [x, x])
