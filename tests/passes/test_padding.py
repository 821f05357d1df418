"""Pad folding into conv padding, and the pads that are not conv padding."""

import pytest

from cnncompile.algorithms.windows import AutoPad
from cnncompile.ops.conv import Conv
from cnncompile.ops.fused import Activation
from cnncompile.ops.elementwise import Relu
from cnncompile.ops.tensor import Pad, PadMode
from pass_harness import Net, assert_same_numerics, declined, fired, ops, optimize


@pytest.mark.parametrize("conv", [dict(pad=1), dict(pad=0, stride=2), dict(pad=2, dilation=2), dict(group=4)])
def test_zero_pad_folds_into_conv(conv):
    net = Net((2, 4, 7, 7))
    padded = net.node(Pad, net.x, pads=(0, 0, 1, 2, 0, 0, 3, 0))
    before, run = optimize(net.done(net.conv(padded, 4, **conv)), "fold-pad")
    assert fired(run) == {"fold-pad-into-conv": 1} and ops(run.graph) == {"Conv": 1}
    assert_same_numerics(before, run.graph)


def test_pad_on_given_axes_and_into_a_valid_conv():
    net = Net((1, 3, 6, 6))
    padded = net.node(Pad, net.x, pads=(1, 1, 2, 2), axes=(2, 3))
    y = net.node(Conv, padded, net.he((4, 3, 3, 3), 27), auto_pad=AutoPad.VALID)
    before, run = optimize(net.done(y), "fold-pad")
    assert ops(run.graph) == {"Conv": 1} and run.graph.nodes[0].attrs.pads == (1, 1, 2, 2)
    assert_same_numerics(before, run.graph)


def test_pad_folds_into_a_fused_conv():
    net = Net((1, 4, 6, 6))
    padded = net.node(Pad, net.x, pads=(0, 0, 1, 1, 0, 0, 1, 1))
    graph = net.done(net.node(Relu, net.conv(padded, 4, pad=0)))
    before, run = optimize(graph, "fuse-conv-epilogue", "fold-pad")
    assert ops(run.graph) == {"FusedConv": 1}
    assert run.graph.nodes[0].attrs.activation is Activation.RELU and run.graph.nodes[0].attrs.pads == (1,) * 4
    assert_same_numerics(before, run.graph)


def test_a_pad_read_elsewhere_stays_for_its_other_reader():
    net = Net((1, 4, 6, 6))
    padded = net.node(Pad, net.x, pads=(0, 0, 1, 1, 0, 0, 1, 1))
    before, run = optimize(net.done(net.conv(padded, 4, pad=0), padded), "fold-pad")
    assert ops(run.graph) == {"Conv": 1, "Pad": 1}
    assert run.graph.nodes[-1].inputs[0] is run.graph.inputs[0]
    assert_same_numerics(before, run.graph)


@pytest.mark.parametrize("pad, reason", [
    (dict(mode=PadMode.REFLECT), "only constant zero padding is conv padding"),
    (dict(constant_value=1.0), "only constant zero padding is conv padding"),
    (dict(pads=(0, 0, -1, 1, 0, 0, 1, 1)), "negative pads crop"),
])
def test_pads_that_are_not_conv_padding(pad, reason):
    net = Net((1, 4, 6, 6))
    padded = net.node(Pad, net.x, **{"pads": (0, 0, 1, 1, 0, 0, 1, 1), **pad})
    _, run = optimize(net.done(net.conv(padded, 4, pad=0)), "fold-pad")
    assert not run.changed and reason in declined(run)[0]


def test_channel_padding_is_refused():
    net = Net((1, 4, 6, 6))
    padded = net.node(Pad, net.x, pads=(0, 1, 1, 1, 0, 1, 1, 1))
    _, run = optimize(net.done(net.node(Conv, padded, net.he((2, 6, 3, 3), 54))), "fold-pad")
    assert not run.changed and "it pads the batch or channel axis of %x" in declined(run)[0]


def test_same_auto_pad_is_refused():
    net = Net((1, 4, 6, 6))
    padded = net.node(Pad, net.x, pads=(0, 0, 1, 1, 0, 0, 1, 1))
    _, run = optimize(net.done(net.node(Conv, padded, net.he((2, 4, 3, 3), 36), auto_pad=AutoPad.SAME_UPPER)),
                      "fold-pad")
    assert not run.changed and "auto_pad SAME chooses its own padding" in declined(run)[0]
