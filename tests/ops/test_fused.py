"""The fused ops: each computes exactly its unfused chain, checks its epilogue, counts its cost,
and exports as the standard ONNX ops it stands for, which onnxruntime runs."""

import numpy as np
import pytest

import cnncompile
from cnncompile import Graph, TensorType
from cnncompile.errors import ShapeError
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.numerics import relative_error
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import (
    Add, Clip, ClipAttrs, Gelu, GeluApproximation, GeluAttrs, HardSigmoid, HardSigmoidAttrs, HardSwish, LeakyRelu,
    LeakyReluAttrs, Mul, Relu, Sigmoid, Tanh,
)
from cnncompile.ops.fused import (
    Activation, ChannelAffine, EpilogueAttrs, FusedConv, FusedConvAttrs, conv_operands, residual_of,
)
from cnncompile.ops.registry import NoAttrs
from onnx_harness import he_normal, run_ort

EPILOGUES = {
    Activation.NONE: NoAttrs(), Activation.RELU: NoAttrs(), Activation.CLIP: ClipAttrs(0.0, 6.0),
    Activation.LEAKY_RELU: LeakyReluAttrs(0.1), Activation.SIGMOID: NoAttrs(),
    Activation.HARD_SIGMOID: HardSigmoidAttrs(0.25, 0.5), Activation.HARD_SWISH: NoAttrs(),
    Activation.SILU: NoAttrs(), Activation.GELU: GeluAttrs(GeluApproximation.TANH), Activation.TANH: NoAttrs(),
}
UNFUSED = {Activation.RELU: Relu, Activation.CLIP: Clip, Activation.LEAKY_RELU: LeakyRelu,
           Activation.SIGMOID: Sigmoid, Activation.HARD_SIGMOID: HardSigmoid, Activation.HARD_SWISH: HardSwish,
           Activation.GELU: Gelu, Activation.TANH: Tanh}


def fused_graph(activation: Activation, residual: bool):
    rng = np.random.default_rng(0)
    g = Graph("fused")
    x = g.add_input("x", TensorType((2, 4, 7, 7)))
    inputs = [x, g.add_constant(he_normal(rng, (6, 2, 3, 3)), "w"), g.add_constant(rng.standard_normal(6)
                                                                                     .astype(np.float32), "b")]
    if residual:
        inputs.append(g.add_input("z", TensorType((2, 6, 4, 4))))
    attrs = FusedConvAttrs(pads=(1, 1, 1, 1), strides=(2, 2), group=2, activation=activation,
                           activation_attrs=EPILOGUES[activation])
    g.mark_outputs(*g.add_node(FusedConv, inputs, attrs))
    return g


def unfused(x, w, b, z, activation: Activation):
    y = Conv.run([x, w, b], Conv.make_attrs(pads=(1, 1, 1, 1), strides=(2, 2), group=2))[0]
    if z is not None:
        y = y + z
    if activation is Activation.SILU:
        return y * Sigmoid.run([y], NoAttrs())[0]
    return y if activation is Activation.NONE else UNFUSED[activation].run([y], EPILOGUES[activation])[0]


@pytest.mark.parametrize("activation", list(Activation))
@pytest.mark.parametrize("residual", [False, True])
def test_fused_conv_is_its_unfused_chain_and_exports(activation, residual):
    graph = fused_graph(activation, residual)
    cnncompile.verify(graph)
    rng = np.random.default_rng(1)
    inputs = {v.name: rng.standard_normal(v.type.shape).astype(np.float32) for v in graph.inputs}
    w, b = (graph.constants[v] for v in graph.nodes[0].inputs[1:3])
    want = unfused(inputs["x"].astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                   inputs["z"].astype(np.float64) if residual else None, activation)
    got = cnncompile.run_reference(graph, inputs)["fusedconv"]
    assert relative_error(got, want) <= 1e-14
    model = to_onnx(graph)
    assert all(n.domain == "" for n in model.graph.node) and model.graph.node[0].op_type == "Conv"
    assert len(model.graph.node) == 1 + residual + (activation is not Activation.NONE) + (activation is Activation.SILU)
    assert relative_error(run_ort(model, inputs)[0], want) <= 1e-5


@pytest.mark.parametrize("activation", [Activation.NONE, Activation.RELU, Activation.SILU])
def test_channel_affine_is_a_scale_shift_and_exports(activation):
    rng = np.random.default_rng(2)
    g = Graph("affine")
    x = g.add_input("x", TensorType((2, 3, 4, 4)))
    scale = rng.uniform(0.5, 1.5, (3, 1, 1)).astype(np.float32)
    shift = rng.standard_normal((3, 1, 1)).astype(np.float32)
    g.mark_outputs(*g.add_node(ChannelAffine, [x, g.add_constant(scale, "s"), g.add_constant(shift, "t")],
                               activation=activation))
    data = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    y = data.astype(np.float64) * scale + shift
    want = {Activation.NONE: y, Activation.RELU: np.maximum(y, 0), Activation.SILU: y / (1 + np.exp(-y))}[activation]
    assert relative_error(cnncompile.run_reference(g, {"x": data})["channelaffine"], want) <= 1e-14
    model = to_onnx(g)
    assert [n.op_type for n in model.graph.node][:2] == ["Mul", "Add"]
    assert relative_error(run_ort(model, {"x": data})[0], want) <= 1e-5


def test_the_residual_and_the_conv_operands_by_name():
    with_z, without_z = (fused_graph(Activation.NONE, residual=r).nodes[0] for r in (True, False))
    assert residual_of(with_z.inputs).name == "z" and residual_of(without_z.inputs) is None
    assert [v.name for v in conv_operands(with_z.inputs)] == [v.name for v in without_z.inputs] == ["x", "w", "b"]


def test_epilogue_attrs_must_fit_the_activation():
    with pytest.raises(ShapeError, match="FusedConv: activation Clip takes ClipAttrs, got NoAttrs"):
        FusedConv.infer([TensorType((1, 2, 4, 4)), TensorType((2, 2, 1, 1)), TensorType((2,))],
                        FusedConvAttrs(activation=Activation.CLIP))


def test_a_residual_must_match_the_output():
    with pytest.raises(ShapeError, match="FusedConv: residual Z float32\\[1x2x3x3\\] must match"):
        FusedConv.infer([TensorType((1, 2, 4, 4)), TensorType((2, 2, 1, 1)), TensorType((2,)),
                         TensorType((1, 2, 3, 3))], FusedConvAttrs())


def test_channel_affine_wants_broadcastable_per_channel_operands():
    with pytest.raises(ShapeError, match="scale float32\\[3\\] must be float32\\[3, 1, 1\\]"):
        ChannelAffine.infer([TensorType((1, 3, 4, 4)), TensorType((3,)), TensorType((3, 1, 1))], EpilogueAttrs())


def test_a_fused_convs_attrs_do_not_pass_for_a_convs():
    g = Graph()
    x = g.add_input("x", TensorType((1, 2, 4, 4)))
    g.add_node(Conv, [x, g.add_constant(np.ones((2, 2, 1, 1), np.float32), "w")])
    g.nodes[0].attrs = FusedConvAttrs()
    with pytest.raises(cnncompile.errors.VerifyError, match="attrs are FusedConvAttrs, expected ConvAttrs"):
        cnncompile.verify(g)


def test_flops_count_the_conv_the_residual_and_the_activation():
    x, w, b, z = TensorType((1, 4, 8, 8)), TensorType((8, 4, 3, 3)), TensorType((8,)), TensorType((1, 8, 8, 8))
    y = [TensorType((1, 8, 8, 8))]
    conv = Conv.flops([x, w, b], y, Conv.make_attrs(pads=(1,) * 4))
    relu = Relu.flops(y, y, NoAttrs())
    attrs = FusedConvAttrs(pads=(1,) * 4, activation=Activation.RELU)
    assert FusedConv.flops([x, w, b, z], y, attrs) == conv + 512 + relu
    silu = FusedConvAttrs(pads=(1,) * 4, activation=Activation.SILU)
    assert FusedConv.flops([x, w, b], y, silu) == conv + Sigmoid.flops(y, y, NoAttrs()) + Mul.flops(y, y, NoAttrs())
    assert ChannelAffine.flops([x], [x], EpilogueAttrs()) == 2 * 256 and Add.flops(y, y, NoAttrs()) == 512
