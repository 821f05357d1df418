"""convert-precision: where the casts go, what stays float32, and how far the emulated model is from float64.

The expected cast counts are read off the architecture (ResNet-18: the image in, around the
global average pool, the logits out); the numerical bounds are DESIGN.md's per-type policy,
and the emulating reference is checked against onnxruntime running the exported graph.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnncompile.backends.reference import run_reference
from cnncompile.backends.tvm.target import parse_target
from cnncompile.errors import PassError
from cnncompile.frontends.load import load_model
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.ir.types import DType
from cnncompile.ir.verifier import verify
from cnncompile.numerics import DTYPE_TOLERANCE, relative_error
from cnncompile.ops import lookup
from cnncompile.passes.pipelines import load_pipeline
from cnncompile.passes import run_pipeline
from cnncompile.passes.precision import Precision, PrecisionOptions, convert_precision
from cnncompile.selection.pipelines import resolve_precision
from cnncompile.tools.models import random_inputs
from cnncompile.tools.peers import onnxruntime_session

CAST, GEMM = lookup("Cast"), lookup("Gemm")
REDUCED_OPS = {lookup(n) for n in ("FusedConv", "Conv", "Gemm", "MatMul")}


@pytest.fixture(scope="module")
def resnet18():
    graph = load_model("zoo:resnet18", {"input": (1, 3, 64, 64)})
    return run_pipeline(graph, load_pipeline("O3").steps()).graph


def converted(graph, precision=Precision.BF16, keep=()):
    copy = graph.copy()
    copy, log = convert_precision(copy, PrecisionOptions(precision, keep))
    verify(copy)
    return copy, log


@pytest.mark.parametrize("precision", [Precision.BF16, Precision.FP16])
def test_convs_and_gemm_compute_reduced_with_float32_parameters(resnet18, precision):
    graph, _ = converted(resnet18, precision)
    dtype = precision.dtype
    computing = [n for n in graph.nodes if n.op in REDUCED_OPS]
    assert len(computing) == 21  # 20 convs and the classifier
    for node in computing:
        x, w = node.inputs[:2]
        assert (x.type.dtype, w.type.dtype, node.outputs[0].type.dtype) == (dtype, dtype, dtype), node.name
        assert node.inputs[2].type.dtype is DType.FLOAT32, f"{node.name}: the bias stays float32"
    assert [v.type.dtype for v in (*graph.inputs, *graph.outputs)] == [DType.FLOAT32, DType.FLOAT32]
    assert [o.name for o in graph.outputs] == [o.name for o in resnet18.outputs]


def test_casts_at_the_fewest_points(resnet18):
    """Into the first conv, around the global average pool (a reduction, kept float32), out of the classifier."""
    graph, log = converted(resnet18)
    casts = [n for n in graph.nodes if n.op is CAST]
    assert len(casts) == log.fired["cast"] == 4
    read_by = {n.inputs[0].name: n for n in graph.nodes}
    pool = next(n for n in graph.nodes if n.op.name == "GlobalAveragePool")
    assert pool.inputs[0].type.dtype is DType.FLOAT32 and pool.outputs[0].type.dtype is DType.FLOAT32
    assert read_by[pool.outputs[0].name].op is CAST
    assert graph.outputs[0] is casts[-1].outputs[0]
    max_pool = next(n for n in graph.nodes if n.op.name == "MaxPool")
    assert max_pool.outputs[0].type.dtype is DType.BFLOAT16, "a max follows its bf16 neighbours"


def test_a_second_run_changes_nothing(resnet18):
    graph, _ = converted(resnet18)
    _, again = convert_precision(graph, PrecisionOptions(Precision.BF16))
    assert not again


def test_keep_fp32_by_node_name(resnet18):
    head = next(n.name for n in resnet18.nodes if n.op is GEMM)
    graph, _ = converted(resnet18, keep=(head,))
    gemm = next(n for n in graph.nodes if n.op is GEMM)
    assert all(v.type.dtype is DType.FLOAT32 for v in (*gemm.inputs, *gemm.outputs))
    assert sum(n.op is CAST for n in graph.nodes) == 2  # the image in, and out of the last conv block
    with pytest.raises(PassError, match="no node called nonesuch"):
        converted(resnet18, keep=("nonesuch",))


def test_winograd_is_not_kept_in_reduced_precision(resnet18):
    from dataclasses import replace

    from cnncompile.algorithms.applicability import ConvAlgorithm

    graph = resnet18.copy()
    conv = next(n for n in graph.nodes if n.op.name == "FusedConv" and n.inputs[1].type.shape[2:] == (3, 3)
                and n.attrs.strides == (1, 1))
    conv.attrs = replace(conv.attrs, algorithm=ConvAlgorithm.WINOGRAD_F4X3)
    graph, log = converted(graph)
    assert log.fired["direct-in-reduced-precision"] == 1
    assert next(n for n in graph.nodes if n.name == conv.name).attrs.algorithm is ConvAlgorithm.DIRECT


@pytest.mark.parametrize("precision", [Precision.BF16, Precision.FP16])
def test_emulated_model_is_within_the_policy_of_float64(resnet18, precision):
    inputs = random_inputs(resnet18, 3)
    gold = run_reference(resnet18, inputs, DType.FLOAT64)["fc"]
    graph, _ = converted(resnet18, precision)
    emulated = run_reference(graph, inputs, DType.FLOAT32)["fc"]
    error = relative_error(emulated, gold)
    assert error <= DTYPE_TOLERANCE[precision.dtype]
    # and it did round: a bf16 model agreeing with float64 to float32 level would mean nothing was converted
    assert error > 10 * DTYPE_TOLERANCE[DType.FLOAT32]


def test_emulation_agrees_with_onnxruntime_running_the_exported_graph(resnet18):
    """The export spells each reduced node as Cast up, float32 op, Cast down: an independent emulation."""
    graph, _ = converted(resnet18)
    inputs = random_inputs(graph, 4)
    ours = run_reference(graph, inputs, DType.FLOAT32)["fc"]
    theirs = onnxruntime_session(to_onnx(graph)).run(None, inputs)[0]
    assert relative_error(ours, theirs) <= 2 * 2.0 ** -8  # bf16 rounding flips compound through 21 layers
    negative = run_reference(resnet18, inputs, DType.FLOAT32)["fc"]
    assert relative_error(negative, theirs) > 1e-4, "the float32 model is not what onnxruntime ran"


def test_auto_is_what_the_target_computes_fastest_in():
    assert resolve_precision("auto", parse_target("llvm:sapphirerapids")) is Precision.BF16
    assert resolve_precision("auto", parse_target("llvm:znver3")) is Precision.FP32
    assert resolve_precision("auto", parse_target("cuda")) is Precision.FP16
    assert resolve_precision("fp16", parse_target("llvm:znver3")) is Precision.FP16


def test_reduced_constants_hold_the_rounded_weights(resnet18):
    graph, _ = converted(resnet18)
    conv = next(n for n in graph.nodes if n.op.name == "FusedConv")
    original = next(n for n in resnet18.nodes if n.name == conv.name)
    rounded = graph.constants[conv.inputs[1]]
    exact = resnet18.constants[original.inputs[1]]
    assert rounded.dtype == DType.BFLOAT16.numpy
    np.testing.assert_array_equal(rounded, exact.astype(DType.BFLOAT16.numpy))
