"""fp16 and bf16 kernels on TVM against the emulating reference, and whole models against float64.

Each reduced-precision kernel makes the roundings the reference emulates (operands rounded,
float32 accumulation, one rounding on store), so it must agree with the emulation bit for
bit but where a float32 sum lands within its last bits of a rounding boundary: there the two
round to neighbours, one ulp apart (numerics.ulps_apart). The negative control is the same
comparison against a reference that did not round the weights, which must fail it.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.backends.reference import run_reference
from cnncompile.frontends.load import load_model
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.numerics import DTYPE_TOLERANCE, relative_error, ulps_apart
from cnncompile.ops import REGISTRY
from cnncompile.ops.fused import Activation
from cnncompile.ops.registry import NoAttrs
from cnncompile.tools.models import random_inputs
from cnncompile.tools.peers import onnxruntime_session

# Neighbouring roundings are rare: at most this share of elements may sit one ulp apart.
FLIP_SHARE = 0.02
PRECISIONS = [("bf16", DType.BFLOAT16), ("fp16", DType.FLOAT16)]


def assert_emulated(out: np.ndarray, emulated: np.ndarray, dtype: DType, what: str) -> None:
    """Within one ulp where the values are normal; near zero (where a ReLU cuts sums that float32 order
    puts on either side of it) within float32's bound relative to the tensor's largest value."""
    scale = float(np.max(np.abs(emulated.astype(np.float64)))) or 1.0
    close = np.abs(out.astype(np.float64) - emulated.astype(np.float64)) <= DTYPE_TOLERANCE[DType.FLOAT32] * scale
    apart = np.where(close, 0.0, ulps_apart(out, emulated, dtype))
    assert apart.max() <= 1, f"{what}: {apart.max():.0f} ulps of {dtype.value} from the emulation"
    assert np.mean(apart > 0) <= FLIP_SHARE, f"{what}: {np.mean(apart > 0):.1%} of elements differ"


def conv_graph(x, w, algorithm, group=1, strides=(1, 1), pads=(1, 1, 1, 1), relu=True, seed=0):
    rng = np.random.default_rng(seed)
    graph = Graph(f"conv_{algorithm.value}")
    xv = graph.add_input("x", TensorType(x))
    weights = (rng.standard_normal(w) * np.sqrt(2.0 / np.prod(w[1:]))).astype(np.float32)
    inputs = [xv, graph.add_constant(weights, "w"), graph.add_constant(rng.standard_normal(w[0]).astype(np.float32))]
    (y,) = graph.add_node(REGISTRY["FusedConv"], inputs, activation=Activation.RELU if relu else Activation.NONE,
                          activation_attrs=NoAttrs(), algorithm=algorithm, group=group, strides=strides, pads=pads)
    graph.mark_outputs(y)
    return graph, {"x": rng.standard_normal(x).astype(np.float32)}


CONVS = {
    "direct": ((1, 16, 12, 12), (24, 16, 3, 3), ConvAlgorithm.DIRECT, {}),
    "strided": ((2, 8, 13, 11), (16, 8, 3, 3), ConvAlgorithm.DIRECT, {"strides": (2, 2)}),
    "depthwise": ((1, 16, 10, 10), (16, 1, 3, 3), ConvAlgorithm.DEPTHWISE, {"group": 16}),
    "gemm_1x1": ((1, 32, 8, 8), (16, 32, 1, 1), ConvAlgorithm.GEMM_1X1, {"pads": (0, 0, 0, 0)}),
    "im2col": ((1, 8, 9, 9), (12, 8, 3, 3), ConvAlgorithm.IM2COL_GEMM, {}),
}


@pytest.mark.parametrize("precision,dtype", PRECISIONS)
@pytest.mark.parametrize("case", list(CONVS))
def test_conv_kernel_is_its_emulation(case, precision, dtype):
    x, w, algorithm, extra = CONVS[case]
    graph, feeds = conv_graph(x, w, algorithm, **extra)
    # O3 lays feature maps out for the CPU (NCHWc) and picks each kernel's template within the algorithm
    model = cnncompile.compile(graph, "llvm", "O3" if case == "direct" else "O0", precision=precision)
    conv = next(n for n in model.graph.nodes if n.op.name == "FusedConv")
    assert conv.inputs[0].type.dtype is dtype and conv.inputs[1].type.dtype is dtype
    out = model.run(feeds)[graph.outputs[0].name]
    emulated = run_reference(model.graph, feeds, DType.FLOAT32)[graph.outputs[0].name]
    assert_emulated(out, emulated, dtype, f"{case} in {precision}")
    unrounded = run_reference(graph, feeds, DType.FLOAT64)[graph.outputs[0].name]
    assert ulps_apart(out, unrounded, dtype).max() > 1, "the negative control: float weights are not what ran"


@pytest.fixture(scope="module")
def resnet18_bf16():
    return cnncompile.compile("zoo:resnet18", "llvm", "O3", input_shapes={"input": (1, 3, 64, 64)}, precision="bf16")


def test_every_resnet18_kernel_is_its_emulation(resnet18_bf16):
    """Each node's kernel alone on the emulated values of its inputs: convs, the classifier, pools, casts."""
    model = resnet18_bf16
    inputs = random_inputs(model.graph, 1)
    arrived: dict[str, list[np.ndarray]] = {}
    run_reference(model.graph, inputs, DType.FLOAT32, hook=lambda node, args: arrived.__setitem__(node.name, args))
    checked = set()
    for node in model.graph.nodes:
        args = [a.astype(v.type.dtype.numpy) if v.type.dtype.is_float else a
                for a, v in zip(arrived[node.name], node.inputs)]
        (want,) = node.op.run([a.astype(np.float32) if v.type.dtype.is_float else a
                               for a, v in zip(args, node.inputs)], node.attrs)
        (got,) = model.run_node(node.name, args)
        out = node.outputs[0].type.dtype
        if out.is_reduced:
            assert_emulated(got, want.astype(out.numpy), out, node.name)
        else:
            assert relative_error(got, want) <= DTYPE_TOLERANCE[DType.FLOAT32], node.name
        checked.add(node.op.name)
    assert {"FusedConv", "Gemm", "MaxPool", "Cast", "GlobalAveragePool", "LayoutTransform"} <= checked


def test_resnet18_bf16_is_within_the_policy_and_records_its_precision(resnet18_bf16, tmp_path):
    model = resnet18_bf16
    inputs = random_inputs(model.graph, 2)
    gold = run_reference(load_model("zoo:resnet18", {"input": (1, 3, 64, 64)}), inputs, DType.FLOAT64)["fc"]
    error = relative_error(model.run(inputs)["fc"], gold)
    assert 1e-4 < error <= DTYPE_TOLERANCE[DType.BFLOAT16]
    model.save(tmp_path / "a")
    loaded = cnncompile.load(tmp_path / "a")
    assert loaded.provenance.precision == "bf16"
    np.testing.assert_array_equal(loaded.run(inputs)["fc"], model.run(inputs)["fc"])


def test_a_float16_onnx_model_imports_compiles_and_matches_onnxruntime(tmp_path):
    """A model stored in float16 throughout (as onnx's float16 converter or torch's .half() export writes it)."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float16)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    graph = helper.make_graph(nodes, "fp16", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 8, 4, 4])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float16)
    onnx.save(model, tmp_path / "fp16.onnx")
    compiled = cnncompile.compile(tmp_path / "fp16.onnx", "llvm", "O3")
    assert compiled.outputs[0].dtype == "float16"
    ours = compiled.run({"x": x})["y"]
    theirs = onnxruntime_session(model).run(None, {"x": x})[0]
    assert_emulated(ours, theirs, DType.FLOAT16, "the float16 model")
