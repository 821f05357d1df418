"""Layouts in the IR: which ops declare them, how shape rules propagate them, what the verifier refuses."""

import numpy as np
import pytest

from cnncompile import Graph, TensorType, verify
from cnncompile.errors import ShapeError, VerifyError
from cnncompile.ir.types import NCHW, NHWC, LayoutKind, nchwc
from cnncompile.ops import REGISTRY
from cnncompile.ops.elementwise import Add, Relu
from cnncompile.ops.fused import ChannelAffine, FusedConv, FusedConvAttrs
from cnncompile.ops.layout import LayoutTransform, LayoutTransformAttrs
from cnncompile.ops.pool import GlobalAveragePool, MaxPool
from cnncompile.ops.tensor import Concat, Flatten

# CONTRACT "Cross-helper interfaces" 1: the ops the TVM backend lowers in NCHWc and NHWC.
LAYOUT_CAPABLE = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Gelu",
                  "Add", "Sub", "Mul", "Div", "Sum", "ChannelAffine", "MaxPool", "AveragePool",
                  "GlobalAveragePool", "GlobalMaxPool", "Concat", "FusedConv", "LayoutTransform", "Cast"}
N8C = nchwc(8)


def laid_out(graph: Graph, shape=(1, 16, 6, 6), layout=N8C):
    """A graph input, and the same tensor stored in `layout` by a transform."""
    x = graph.add_input("x", TensorType(shape))
    (y,) = graph.add_node(LayoutTransform, [x], layout=layout)
    return x, y


def test_exactly_the_contracts_ops_declare_layouts():
    declared = {name for name, op in REGISTRY.items() if op.layouts}
    assert declared == LAYOUT_CAPABLE
    for name in declared:
        assert set(REGISTRY[name].layouts.kinds) == {LayoutKind.NHWC, LayoutKind.NCHWC}


@pytest.mark.parametrize("layout", [N8C, nchwc(4), NHWC])
def test_elementwise_and_pools_keep_their_operands_layout(layout):
    graph = Graph("g")
    _, y = laid_out(graph, layout=layout)
    (r,) = graph.add_node(Relu, [y])
    (a,) = graph.add_node(Add, [r, y])
    (p,) = graph.add_node(MaxPool, [a], kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), ceil_mode=1)
    (g,) = graph.add_node(GlobalAveragePool, [p])
    (c,) = graph.add_node(Concat, [g, g], axis=1)
    assert [v.type.layout for v in (r, a, p, g, c)] == [layout] * 5
    assert (p.type.shape, g.type.shape, c.type.shape) == ((1, 16, 4, 4), (1, 16, 1, 1), (1, 32, 1, 1))


def test_nchw_is_spelled_none_in_types_and_attrs():
    shape = (1, 16, 6, 6)
    assert TensorType(shape, layout=NCHW).layout is None and TensorType(shape, layout=NCHW) == TensorType(shape)
    assert LayoutTransformAttrs(NCHW) == LayoutTransformAttrs() and LayoutTransformAttrs(NCHW).layout is None
    assert FusedConvAttrs(layout=NCHW) == FusedConvAttrs() and FusedConvAttrs(layout=NHWC).layout == NHWC


def test_a_transform_to_nchw_is_one_to_none():
    graph = Graph("g")
    _, y = laid_out(graph)
    (spelled,) = graph.add_node(LayoutTransform, [y], layout=NCHW)
    (unspelled,) = graph.add_node(LayoutTransform, [y])
    assert spelled.type == unspelled.type and str(spelled.type) == "float32[1x16x6x6]"


def test_transform_back_to_nchw_is_logical():
    graph = Graph("g")
    _, y = laid_out(graph)
    (z,) = graph.add_node(LayoutTransform, [y])
    graph.mark_outputs(z)
    assert z.type.layout is None
    verify(graph)


def test_fused_conv_writes_its_attribute_layout_and_residual_must_match():
    graph = Graph("g")
    x, y = laid_out(graph)
    w = graph.add_constant(np.ones((8, 16, 1, 1), np.float32), "w")
    b = graph.add_constant(np.zeros(8, np.float32), "b")
    (out,) = graph.add_node(FusedConv, [x, w, b], layout=nchwc(4))   # reads NCHW, writes NCHW4c
    assert out.type.layout == nchwc(4)
    (again,) = graph.add_node(FusedConv, [y, w, b], layout=N8C)       # reads NCHW8c, writes NCHW8c
    assert again.type.layout == N8C
    with pytest.raises(ShapeError, match="residual Z is stored as NCHW4c, the output as NCHW8c"):
        graph.add_node(FusedConv, [x, w, b, out], layout=N8C)
    with pytest.raises(ShapeError, match="FusedConv: operand W must stay logical"):
        graph.add_node(FusedConv, [x, graph.add_node(LayoutTransform, [w], layout=N8C)[0], b], layout=N8C)


@pytest.mark.parametrize("build, message", [
    (lambda g, x, y: g.add_node(Flatten, [y]), "Flatten reads input in NCHW only, but it is stored as NCHW8c"),
    (lambda g, x, y: g.add_node(Add, [x, y]),
     r"Add: operands are stored in different layouts \(A as NCHW, B as NCHW8c\)"),
    (lambda g, x, y: g.add_node(Add, [y, g.add_node(GlobalAveragePool, [y])[0]]), "do not broadcast"),
    (lambda g, x, y: g.add_node(Concat, [y, y], axis=2), "only the channel axis 1"),
    (lambda g, x, y: g.add_node(LayoutTransform, [y], layout=nchwc(32)), "cannot be stored as NCHW32c"),
], ids=["nchw-only-op", "disagreeing-operands", "broadcast", "concat-axis", "block-too-big"])
def test_shape_rules_refuse_what_a_layout_cannot_do(build, message):
    graph = Graph("g")
    x, y = laid_out(graph)
    with pytest.raises(ShapeError, match=message):
        build(graph, x, y)


def test_channel_affine_scale_must_stay_logical():
    graph = Graph("g")
    _, y = laid_out(graph)
    s = graph.add_constant(np.ones((1, 16, 1, 1), np.float32), "s")
    (s8,) = graph.add_node(LayoutTransform, [s], layout=N8C)
    with pytest.raises(ShapeError, match="ChannelAffine: operand scale must stay logical"):
        graph.add_node(ChannelAffine, [y, s8, s8])


def chain() -> Graph:
    graph = Graph("chain")
    _, y = laid_out(graph)
    (r,) = graph.add_node(Relu, [y], name="relu1")
    (z,) = graph.add_node(LayoutTransform, [r], name="back")
    graph.mark_outputs(z)
    return graph


def test_verifier_accepts_a_consistent_layout_chain():
    verify(chain())


def test_verifier_catches_a_wrong_output_layout_naming_the_node():
    graph = chain()
    relu = graph.nodes[1].outputs[0]
    relu.type = TensorType(relu.type.shape, relu.type.dtype, nchwc(4))
    with pytest.raises(VerifyError, match=r"node 'relu1' \(Relu\): output '%relu1' is typed .* NCHW4c "
                                          r"but the shape rule gives .* NCHW8c"):
        verify(graph)
    relu.type = TensorType(relu.type.shape, relu.type.dtype)  # claims NCHW, the rule gives NCHW8c
    with pytest.raises(VerifyError, match=r"node 'relu1' \(Relu\): output '%relu1' is typed float32\[1x16x6x6\] "
                                          r"but the shape rule gives float32\[1x16x6x6\] NCHW8c"):
        verify(graph)


def test_verifier_keeps_graph_inputs_and_outputs_logical():
    graph = chain()
    graph.outputs = [graph.nodes[1].outputs[0]]
    with pytest.raises(VerifyError, match="graph output '%relu1' is stored as NCHW8c"):
        verify(graph)
    graph = chain()
    graph.inputs[0].type = TensorType((1, 16, 6, 6), layout=N8C)
    with pytest.raises(VerifyError, match="graph input '%x' is stored as NCHW8c"):
        verify(graph)


def test_verifier_checks_a_laid_out_constant_holds_its_shape():
    graph = chain()
    c = graph.add_constant(np.ones((1, 12, 6, 6), np.float32), "c")
    c.type = TensorType(c.type.shape, layout=N8C)
    with pytest.raises(VerifyError, match="constant 'c': float32\\[1x12x6x6\\] NCHW8c cannot be stored as NCHW8c"):
        verify(graph)

