"""Per-channel Mul/Add by constants folded into convs and ChannelAffines, before and after."""

import numpy as np
import pytest

from cnncompile.ops.elementwise import Add, Mul
from cnncompile.passes.scale_shift import per_channel
from cnncompile.ir.types import TensorType
from pass_harness import Net, assert_same_numerics, declined, fired, ops, optimize

SHAPES = {"[C,1,1]": (6, 1, 1), "[1,C,1,1]": (1, 6, 1, 1), "scalar": (), "[1]": (1,)}


def test_per_channel_reads_every_broadcast_form():
    like = TensorType((2, 6, 4, 4))
    for shape in SHAPES.values():
        array = np.arange(1.0, 1 + np.prod(shape, dtype=int)).reshape(shape)
        assert per_channel(array, like).shape == (6,)
    for shape in [(6, 4, 4), (1, 1, 4, 1), (1, 1, 6, 1, 1), (3, 1, 1)]:
        assert per_channel(np.ones(shape), like) is None


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op, rule", [(Mul, "scale-after-conv"), (Add, "shift-after-conv")])
@pytest.mark.parametrize("constant_first", [False, True])
def test_after_conv(shape, op, rule, constant_first):
    net = Net((2, 4, 7, 7))
    y = net.conv(net.x, 6, bias=not constant_first)
    k = net.const(net.rng.uniform(0.5, 1.5, SHAPES[shape]), "k")
    before, run = optimize(net.done(net.node(op, *((k, y) if constant_first else (y, k)))), "fold-scale-shift")
    assert fired(run) == {rule: 1} and ops(run.graph) == {"Conv": 1}
    assert_same_numerics(before, run.graph)


def test_a_constant_that_varies_in_space_is_not_folded():
    net = Net((1, 4, 5, 5))
    graph = net.done(net.node(Mul, net.conv(net.x, 4), net.const(np.ones((1, 1, 5, 5)), "k")))
    _, run = optimize(graph, "fold-scale-shift")
    assert not run.changed
    assert "varies along more than the channel axis of %conv float64[1x4x5x5]" in declined(run)[0]


def test_after_channel_affine():
    net = Net((2, 5, 4, 4))
    y = net.node(Add, net.node(Mul, net.bn(net.x), net.const(np.linspace(0.5, 2, 5).reshape(5, 1, 1), "s")),
                 net.const(np.linspace(-1, 1, 5).reshape(5, 1, 1), "t"))
    before, run = optimize(net.done(y), "batchnorm-to-affine", "fold-scale-shift")
    assert fired(run) == {"batchnorm-to-affine": 1, "scale-after-affine": 1, "shift-after-affine": 1}
    assert ops(run.graph) == {"ChannelAffine": 1}
    assert_same_numerics(before, run.graph)


@pytest.mark.parametrize("conv", [dict(), dict(group=2), dict(group=4), dict(dilation=2), dict(stride=2)])
def test_scale_before_conv_even_padded_grouped_or_dilated(conv):
    net = Net((2, 4, 8, 8))
    scaled = net.node(Mul, net.x, net.const(net.rng.uniform(0.5, 1.5, (4, 1, 1)), "k"))
    before, run = optimize(net.done(net.conv(scaled, 8, **conv)), "fold-scale-shift")
    assert fired(run) == {"scale-before-conv": 1} and ops(run.graph) == {"Conv": 1}
    assert_same_numerics(before, run.graph)


@pytest.mark.parametrize("conv", [dict(pad=0), dict(pad=0, group=2, dilation=2)])
def test_shift_before_an_unpadded_conv(conv):
    net = Net((2, 4, 8, 8))
    shifted = net.node(Add, net.x, net.const(net.rng.standard_normal((1, 4, 1, 1)), "k"))
    before, run = optimize(net.done(net.conv(shifted, 6, **conv)), "fold-scale-shift")
    assert fired(run) == {"shift-before-conv": 1} and ops(run.graph) == {"Conv": 1}
    assert_same_numerics(before, run.graph)


def test_shift_before_a_padded_conv_is_refused():
    net = Net((1, 4, 6, 6))
    shifted = net.node(Add, net.x, net.const(np.ones((4, 1, 1)), "k"))
    _, run = optimize(net.done(net.conv(shifted, 4, pad=1)), "fold-scale-shift")
    assert not run.changed
    assert "the conv pads with zeros, which a shift before it would not reach" in declined(run)[0]


def test_a_scale_read_by_another_node_stays():
    net = Net((1, 4, 6, 6))
    scaled = net.node(Mul, net.x, net.const(np.full((4, 1, 1), 2.0), "k"))
    _, run = optimize(net.done(net.conv(scaled, 4), scaled), "fold-scale-shift")
    assert not run.changed
