"""The quantization kernels' integer results are the reference's to the bit (test_lowering.py bounds only
a relative error, which an integer one off in 255 can pass); QuantizeLinear's opset-23 `precision` from an
ONNX file, against onnxruntime."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import cnncompile
from cnncompile.ir.types import DType
from onnx_harness import run_ort

import cases  # noqa: F401  (cases_quantize builds on it)
from cases_quantize import CASES

INTEGER = [c for c in CASES if c.op != "DequantizeLinear"]


@pytest.mark.parametrize("case", INTEGER, ids=[c.id for c in INTEGER])
def test_integer_results_equal_the_reference(case):
    graph, feeds = case.build(seed=2)
    got = cnncompile.compile(graph, target="llvm", pipeline="O0").run(feeds)
    for dtype in (DType.FLOAT64, DType.FLOAT32):
        want = cnncompile.run_reference(graph, feeds, dtype=dtype)
        for value in graph.outputs:
            if not value.type.dtype.is_float:
                np.testing.assert_array_equal(got[value.name], want[value.name], err_msg=f"{case.id} {value.name}")


def _onnx_reference_formula(x: np.ndarray, scale: float, zero_point: int, precision: np.dtype) -> np.ndarray:
    """onnx/reference/ops/op_quantize_linear.py's steps (its evaluator runs opset 23 models with its opset-21
    kernel, which refuses `precision`): x.astype(precision) / y_scale.astype(precision), rint, + zero point."""
    quotient = x.astype(precision) / np.asarray(scale, np.float32).astype(precision)
    return np.clip(np.rint(quotient.astype(np.float64)) + zero_point, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("precision", [TensorProto.FLOAT16, TensorProto.BFLOAT16])
def test_precision_divides_in_the_16_bit_type(tmp_path, precision):
    """x and the scale rounded to `precision`, then divided in it, as onnxruntime does (float16; it refuses
    bfloat16) and onnx's reference writes it: 30 * N(0, 1) values whose float32 and 16-bit quotients round to
    different integers in about one case in ten."""
    rng = np.random.default_rng(0)
    feeds = {"x": (rng.standard_normal((4, 64)) * 30).astype(np.float32), "s": np.array(0.0537, np.float32),
             "z": np.array(3, np.int16)}
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], precision=precision)
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.INT16, [4, 64])],
                              [onnx.numpy_helper.from_array(feeds.pop(n), n) for n in ("s", "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "q.onnx")
    want = _onnx_reference_formula(feeds["x"], 0.0537, 3, onnx.helper.tensor_dtype_to_np_dtype(precision))
    if precision == TensorProto.FLOAT16:
        np.testing.assert_array_equal(run_ort(model, feeds)[0], want)
    unrounded = np.clip(np.rint(feeds["x"] / np.float32(0.0537)) + 3, -32768, 32767).astype(np.int16)
    assert (want != unrounded).sum() > 10, "the inputs must tell a 16-bit quotient from a float32 one"
    compiled = cnncompile.compile(str(tmp_path / "q.onnx"), target="llvm", pipeline="O0")
    np.testing.assert_array_equal(compiled.run(feeds)["y"], want)
    reference = cnncompile.run_reference(cnncompile.load_onnx(model), feeds)["y"]
    np.testing.assert_array_equal(reference, want)
