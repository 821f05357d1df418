"""Transposes and reshapes that cancel or merge."""

import pytest

from cnncompile.ops.elementwise import Relu
from cnncompile.ops.tensor import Flatten, Reshape, Squeeze, Transpose, Unsqueeze
from pass_harness import Net, assert_same_numerics, fired, ops, optimize


def test_transposes_that_cancel_vanish():
    net = Net((2, 3, 4, 5))
    y = net.node(Transpose, net.node(Transpose, net.node(Relu, net.x), perm=(0, 2, 3, 1)), perm=(0, 3, 1, 2))
    before, run = optimize(net.done(net.node(Relu, y)), "simplify-movement")
    assert fired(run) == {"merge-transposes": 1} and ops(run.graph) == {"Relu": 2}
    assert_same_numerics(before, run.graph, tol=0)


def test_transposes_compose_into_one():
    net = Net((2, 3, 4, 5))
    y = net.node(Transpose, net.node(Transpose, net.node(Relu, net.x), perm=(0, 2, 3, 1)), perm=(1, 0, 3, 2))
    before, run = optimize(net.done(y), "simplify-movement")
    assert ops(run.graph) == {"Relu": 1, "Transpose": 1}
    assert_same_numerics(before, run.graph, tol=0)


def test_an_identity_transpose_goes():
    net = Net((2, 3, 4))
    before, run = optimize(net.done(net.node(Relu, net.node(Transpose, net.x, perm=(0, 1, 2)))), "simplify-movement")
    assert fired(run) == {"drop-identity-transpose": 1} and ops(run.graph) == {"Relu": 1}


@pytest.mark.parametrize("chain, left", [
    ([(Reshape, dict(shape=(2, 12, 5))), (Flatten, dict(axis=1))], {"Reshape": 1}),
    ([(Unsqueeze, dict(axes=(0,))), (Squeeze, dict(axes=(0,)))], {}),
    ([(Reshape, dict(shape=(6, 20))), (Reshape, dict(shape=(2, 3, 4, 5)))], {}),
    ([(Flatten, dict(axis=2)), (Reshape, dict(shape=(2, 3, 20))), (Unsqueeze, dict(axes=(3,)))], {"Reshape": 1}),
])
def test_reshape_chains_merge_or_vanish(chain, left):
    net = Net((2, 3, 4, 5))
    y = net.node(Relu, net.x)
    for op, attrs in chain:
        y = net.node(op, y, **attrs)
    before, run = optimize(net.done(net.node(Relu, y)), "simplify-movement")
    assert ops(run.graph) == {"Relu": 2, **left}
    assert_same_numerics(before, run.graph, tol=0)


def test_an_inner_transpose_read_elsewhere_stays():
    net = Net((2, 3, 4))
    inner = net.node(Transpose, net.x, perm=(0, 2, 1))
    y = net.node(Relu, net.node(Transpose, inner, perm=(0, 2, 1)))
    before, run = optimize(net.done(y, inner), "simplify-movement")
    assert ops(run.graph) == {"Transpose": 1, "Relu": 1}
    assert run.graph.nodes[-1].inputs[0] is run.graph.inputs[0]
    assert_same_numerics(before, run.graph, tol=0)
