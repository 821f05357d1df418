"""Dead code, common subexpressions, Identity and Dropout: structure, and numbers untouched."""

import numpy as np

from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Dropout, Identity, Relu, Sigmoid
from cnncompile.ops.tensor import Concat
from pass_harness import Net, assert_same_numerics, declined, fired, ops, optimize


def test_dead_nodes_and_their_constants_go():
    net = Net((1, 4, 5, 5))
    net.conv(net.node(Relu, net.x), 4)  # read by nothing
    graph = net.done(net.node(Sigmoid, net.x))
    before, run = optimize(graph, "eliminate-dead-code")
    assert fired(run) == {"dead-node": 2, "unused-constant": 2}
    assert ops(run.graph) == {"Sigmoid": 1} and not run.graph.constants
    assert_same_numerics(before, run.graph, tol=0)


def test_common_subexpressions_merge():
    net = Net((1, 4, 5, 5))
    w = net.he((4, 4, 3, 3), 36)
    a = net.node(Relu, net.node(Conv, net.x, w, pads=(1,) * 4))
    b = net.node(Relu, net.node(Conv, net.x, w, pads=(1,) * 4))
    graph = net.done(net.node(Add, a, b))
    before, run = optimize(graph, "eliminate-common-subexpressions", "eliminate-dead-code")
    assert fired(run) == {"merged-node": 2}
    assert ops(run.graph) == {"Conv": 1, "Relu": 1, "Add": 1}
    assert_same_numerics(before, run.graph, tol=0)


def test_equal_weights_are_not_merged_and_outputs_keep_their_nodes():
    net = Net((1, 4, 5, 5))
    same = np.ones((4, 4, 1, 1))
    a, b = net.conv(net.x, 4, kernel=1, weight=net.const(same)), net.conv(net.x, 4, kernel=1, weight=net.const(same))
    r1, r2 = net.node(Relu, net.x), net.node(Relu, net.x)
    _, run = optimize(net.done(net.node(Concat, a, b, axis=1), r1, r2), "eliminate-common-subexpressions")
    assert not run.changed and ops(run.graph)["Conv"] == 2 and ops(run.graph)["Relu"] == 2


def test_identity_and_dropout_go():
    net = Net((1, 4, 5, 5))
    y = net.node(Dropout, net.node(Identity, net.node(Relu, net.x)), ratio=0.3)
    graph = net.done(net.node(Sigmoid, y))
    before, run = optimize(graph, "remove-identity")
    assert fired(run) == {"remove-identity": 1, "remove-dropout": 1}
    assert ops(run.graph) == {"Relu": 1, "Sigmoid": 1}
    assert_same_numerics(before, run.graph, tol=0)


def test_a_dropout_whose_mask_is_read_stays():
    net = Net((1, 4, 5, 5))
    out, mask = net.graph.add_node(Dropout, [net.x])
    _, run = optimize(net.done(net.node(Relu, out), mask), "remove-identity")
    assert not run.changed and "its mask output is read" in declined(run)[0]


def test_an_identity_output_keeps_its_name():
    net = Net((1, 4, 5, 5))
    graph = net.done(net.node(Identity, net.node(Relu, net.x)))
    name = graph.outputs[0].name
    before, run = optimize(graph, "remove-identity")
    assert ops(run.graph) == {"Relu": 1} and run.graph.outputs[0].name == name
    assert_same_numerics(before, run.graph, tol=0)
