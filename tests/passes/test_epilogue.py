"""Epilogue fusion: every activation, SiLU, residual adds, ChannelAffine, options, and refusals."""

import pytest

from cnncompile.ops.elementwise import (
    Add, Clip, Gelu, GeluApproximation, HardSigmoid, HardSwish, LeakyRelu, Mul, Relu, Sigmoid, Sum, Tanh,
)
from cnncompile.ops.fused import Activation
from cnncompile.ops.tensor import Concat
from cnncompile.passes import Step, run_pipeline
from cnncompile.passes.epilogue import EpilogueOptions, epilogue_rules
from cnncompile.passes.rewrite import rule_pass
from pass_harness import Net, assert_same_numerics, declined, fired, ops, optimize

ACTIVATIONS = {
    "Relu": (Relu, {}), "ReLU6": (Clip, dict(min=0.0, max=6.0)), "LeakyRelu": (LeakyRelu, dict(alpha=0.1)),
    "Sigmoid": (Sigmoid, {}), "HardSigmoid": (HardSigmoid, dict(alpha=0.3, beta=0.4)), "HardSwish": (HardSwish, {}),
    "Gelu": (Gelu, {}), "Gelu-tanh": (Gelu, dict(approximate=GeluApproximation.TANH)), "Tanh": (Tanh, {}),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_conv_activation(name):
    op, attrs = ACTIVATIONS[name]
    net = Net((2, 4, 7, 7))
    y = net.node(op, net.conv(net.x, 6, bias=False), **attrs)
    y = net.node(op, net.conv(y, 6, group=2, dilation=2), **attrs)
    before, run = optimize(net.done(y), "fuse-conv-epilogue")
    assert fired(run) == {"conv-activation": 2} and ops(run.graph) == {"FusedConv": 2}
    fused = run.graph.nodes[-1]
    assert fused.attrs.activation is Activation(op.name) and fused.attrs.activation_attrs == op.make_attrs(**attrs)
    assert_same_numerics(before, run.graph)


def test_conv_silu():
    net = Net((2, 4, 6, 6))
    y = net.conv(net.x, 4)
    before, run = optimize(net.done(net.node(Mul, net.node(Sigmoid, y), y)), "fuse-conv-epilogue")
    assert fired(run) == {"conv-silu": 1} and ops(run.graph) == {"FusedConv": 1}
    assert run.graph.nodes[0].attrs.activation is Activation.SILU
    assert_same_numerics(before, run.graph)


@pytest.mark.parametrize("add", [Add, Sum])
def test_residual_block(add):
    """ResNet's block end: conv, residual add (Add or a two-input Sum), Relu, as one FusedConv."""
    net = Net((2, 4, 6, 6))
    y = net.node(Relu, net.conv(net.x, 4))
    y = net.node(Relu, net.node(add, net.x, net.conv(y, 4)))
    before, run = optimize(net.done(y), "fuse-conv-epilogue")
    assert fired(run) == {"conv-activation": 1, "conv-residual-activation": 1}
    assert ops(run.graph) == {"FusedConv": 2}
    assert len(run.graph.nodes[-1].inputs) == 4 and run.graph.nodes[-1].inputs[3] is run.graph.inputs[0]
    assert_same_numerics(before, run.graph)


def test_downsampling_block_fuses_one_conv_with_the_other_as_residual():
    net = Net((1, 4, 8, 8))
    main = net.conv(net.node(Relu, net.conv(net.x, 8, stride=2)), 8)
    shortcut = net.conv(net.x, 8, kernel=1, stride=2, pad=0)
    before, run = optimize(net.done(net.node(Relu, net.node(Add, main, shortcut))), "fuse-conv-epilogue")
    assert ops(run.graph) == {"FusedConv": 2, "Conv": 1}
    assert_same_numerics(before, run.graph)


def test_linear_bottleneck_takes_the_residual_without_activation():
    net = Net((1, 4, 6, 6))
    y = net.node(Add, net.conv(net.node(Clip, net.conv(net.x, 8, kernel=1, pad=0), min=0.0, max=6.0), 4, kernel=1,
                               pad=0), net.x)
    before, run = optimize(net.done(y), "fuse-conv-epilogue")
    assert fired(run) == {"conv-activation": 1, "conv-residual": 1}
    assert run.graph.nodes[-1].attrs.activation is Activation.NONE and len(run.graph.nodes[-1].inputs) == 4
    assert_same_numerics(before, run.graph)


def test_channel_affine_takes_its_activation():
    net = Net((2, 4, 5, 5))
    before, run = optimize(net.done(net.conv(net.node(Relu, net.bn(net.x)), 4)), "batchnorm-to-affine",
                           "fuse-conv-epilogue")
    assert ops(run.graph) == {"ChannelAffine": 1, "Conv": 1}
    assert run.graph.nodes[0].attrs.activation is Activation.RELU
    assert_same_numerics(before, run.graph)


def test_a_conv_read_twice_keeps_its_activation_apart():
    net = Net((1, 4, 6, 6))
    y = net.conv(net.x, 4)
    _, run = optimize(net.done(net.node(Relu, y), net.node(Tanh, y)), "fuse-conv-epilogue")
    assert not run.changed
    assert "node 'conv' (Conv): its output %conv is also read by node" in declined(run)[0]


def test_an_add_that_broadcasts_is_not_a_residual():
    net = Net((1, 4, 6, 6))
    y = net.node(Add, net.conv(net.x, 4), net.graph.add_input("z", net.const([0.0]).type))
    _, run = optimize(net.done(y), "fuse-conv-epilogue")
    assert not run.changed and "broadcasts against the conv's output" in declined(run)[0]


def test_a_conv_added_to_itself_is_not_a_residual():
    net = Net((1, 4, 6, 6))
    y = net.conv(net.x, 4)
    _, run = optimize(net.done(net.node(Add, y, y)), "fuse-conv-epilogue")
    assert not run.changed and "it adds the conv's output to itself" in declined(run)[0]


def test_an_add_after_the_activation_cannot_join_the_epilogue():
    net = Net((1, 4, 6, 6))
    y = net.node(Add, net.node(Relu, net.conv(net.x, 4)), net.x)
    before, run = optimize(net.done(y), "fuse-conv-epilogue")
    assert ops(run.graph) == {"FusedConv": 1, "Add": 1}
    assert "it applies an activation already" in declined(run)[0]
    assert_same_numerics(before, run.graph)


def test_a_second_residual_is_refused():
    net = Net((1, 4, 6, 6))
    y = net.node(Add, net.node(Add, net.conv(net.x, 4), net.x), net.x)
    before, run = optimize(net.done(y), "fuse-conv-epilogue")
    assert ops(run.graph) == {"FusedConv": 1, "Add": 1}
    assert "the conv adds a residual already" in declined(run)[0]
    assert_same_numerics(before, run.graph)


def test_options_choose_the_activations_and_residuals():
    net = Net((1, 4, 6, 6))
    y = net.node(Relu, net.node(Add, net.node(Clip, net.conv(net.x, 4), min=0.0, max=6.0), net.conv(net.x, 4)))
    graph = net.done(net.node(Concat, y, net.node(Sigmoid, net.conv(net.x, 4)), axis=1))
    only_relu = rule_pass(epilogue_rules(EpilogueOptions(activations=(Activation.RELU,), residual=False)))
    run = run_pipeline(graph, [Step("fuse-conv-epilogue", only_relu)], verify=True)
    assert not run.changed  # Clip and Sigmoid may not fuse, and the Relu follows a residual add
    assert {r.name for r in epilogue_rules(EpilogueOptions(activations=(Activation.SILU,)))} == \
        {"conv-silu", "affine-silu", "conv-residual"}
