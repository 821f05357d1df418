"""Constant folding: chains of constant nodes and value-independent ops become constants."""

import numpy as np

from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Mul, Relu
from cnncompile.ops.shape import Shape
from cnncompile.ops.tensor import Reshape, Transpose
from cnncompile.passes import Step, run_pipeline
from cnncompile.passes.folding import FoldOptions, fold_constants
from pass_harness import Net, assert_same_numerics, declined, fired, ops, optimize


def test_constant_chains_fold_into_the_weights_they_make():
    net = Net((1, 3, 5, 5))
    raw = net.const(np.arange(3 * 4 * 9, dtype=float).reshape(4, 9, 3) / 100, "raw")
    w = net.node(Mul, net.node(Reshape, net.node(Transpose, raw, perm=(0, 2, 1)), shape=(4, 3, 3, 3)),
                 net.const(2.0, "two"))
    graph = net.done(net.node(Relu, net.node(Conv, net.x, w, pads=(1,) * 4)))
    before, run = optimize(graph, "fold-constants")
    assert fired(run) == {"fold-constants": 3}
    assert ops(run.graph) == {"Conv": 1, "Relu": 1} and len(run.graph.constants) == 1
    assert_same_numerics(before, run.graph, tol=0)


def test_shape_of_a_static_activation_folds():
    net = Net((2, 3, 4, 4))
    shape = net.node(Shape, net.x)
    graph = net.done(net.node(Add, net.node(Relu, net.x), net.node(Mul, net.const(0.0), net.x)), shape)
    before, run = optimize(graph, "fold-constants")
    assert ops(run.graph) == {"Relu": 1, "Mul": 1, "Add": 1}
    np.testing.assert_array_equal(run.graph.constants[run.graph.outputs[1]], [2, 3, 4, 4])
    assert_same_numerics(before, run.graph, tol=0)


def test_a_fold_too_large_is_declined():
    net = Net((1, 2))
    big = net.node(Add, net.const(np.zeros((64, 64))), net.const(1.0))
    graph = net.done(net.node(Mul, net.x, net.const(np.ones((1, 2)))), big)
    run = run_pipeline(graph, [Step("fold-constants", lambda g: fold_constants(g, FoldOptions(max_elements=100)))])
    assert ops(run.graph) == {"Mul": 1, "Add": 1}
    assert "its result has 4096 elements, more than max_elements = 100" in declined(run)[0]
