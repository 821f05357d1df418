"""The verifier rejects malformed graphs with a message naming the node."""

import dataclasses

import numpy as np
import pytest

from cnncompile import Graph, TensorType, verify
from cnncompile.errors import AttrError, VerifyError
from cnncompile.ir.graph import Node, Value
from cnncompile.ops.conv import Conv, ConvAttrs
from cnncompile.ops.elementwise import Add, Relu


def chain() -> Graph:
    graph = Graph("chain")
    x = graph.add_input("x", TensorType((1, 2, 5, 5)))
    w = graph.add_constant(np.ones((3, 2, 3, 3), np.float32), "w")
    (c,) = graph.add_node(Conv, [x, w], name="conv1")
    (r,) = graph.add_node(Relu, [c], name="relu1")
    graph.mark_outputs(r)
    return graph


def test_well_formed_graph_passes():
    verify(chain())


def test_cycle_is_rejected_naming_the_node():
    graph = chain()
    conv, relu = graph.nodes
    conv.inputs[0] = relu.outputs[0]
    with pytest.raises(VerifyError, match="node 'conv1' \\(Conv\\).*produced later by node 'relu1'"):
        verify(graph)


def test_dangling_value_is_rejected():
    graph = chain()
    graph.nodes[1].inputs[0] = Value("ghost", TensorType((1, 3, 3, 3)))
    with pytest.raises(VerifyError, match="node 'relu1' \\(Relu\\): input '%ghost' is dangling"):
        verify(graph)


def test_wrong_shape_is_rejected():
    graph = chain()
    graph.nodes[0].outputs[0].type = TensorType((1, 3, 5, 5))
    with pytest.raises(VerifyError, match="node 'conv1' \\(Conv\\): output '%conv1' is typed .*1x3x5x5.*1x3x3x3"):
        verify(graph)


def test_illegal_attribute_type_is_rejected():
    graph = chain()
    graph.nodes[0].attrs = dataclasses.replace(graph.nodes[0].attrs, strides=[2, 2])
    with pytest.raises(VerifyError, match="node 'conv1' \\(Conv\\): illegal attribute 'strides'"):
        verify(graph)


def test_illegal_attribute_value_is_rejected():
    graph = chain()
    graph.nodes[0].attrs = ConvAttrs(group=2)
    with pytest.raises(VerifyError, match="node 'conv1' \\(Conv\\): Conv with group=2"):
        verify(graph)


def test_attrs_of_another_op_are_rejected():
    graph = chain()
    graph.nodes[1].attrs = ConvAttrs()
    with pytest.raises(VerifyError, match="node 'relu1' \\(Relu\\): attrs are ConvAttrs"):
        verify(graph)


def test_value_defined_twice_is_rejected():
    graph = chain()
    graph.nodes[1].outputs[0] = graph.nodes[0].outputs[0]
    with pytest.raises(VerifyError, match="node 'relu1' \\(Relu\\).*defined twice"):
        verify(graph)


def test_wrong_arity_is_rejected():
    graph = chain()
    x = graph.inputs[0]
    graph.nodes.append(Node(Add, [x], [Value("lonely", x.type)], Add.make_attrs(), "add1"))
    with pytest.raises(VerifyError, match="node 'add1' \\(Add\\): Add takes 2 inputs"):
        verify(graph)


def test_constant_that_disagrees_with_its_type_is_rejected():
    graph = chain()
    w = next(iter(graph.constants))
    graph.constants[w] = np.ones((3, 2, 3, 3), np.float64)
    with pytest.raises(VerifyError, match="constant 'w'"):
        verify(graph)


def test_unknown_attribute_is_an_error_when_building():
    with pytest.raises(AttrError, match="Conv"):
        Conv.make_attrs(stride=(2, 2))
