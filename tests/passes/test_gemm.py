"""MatMul + Add into Gemm, and the reshape before a Gemm into one Flatten."""

import numpy as np

from cnncompile.ops.elementwise import Add
from cnncompile.ops.linalg import Gemm, MatMul
from cnncompile.ops.pool import GlobalAveragePool
from cnncompile.ops.tensor import Flatten, Reshape, Squeeze
from pass_harness import Net, assert_same_numerics, declined, fired, ops, optimize


def test_matmul_add_becomes_gemm():
    net = Net((3, 8))
    y = net.node(Add, net.const(np.arange(4.0), "c"), net.node(MatMul, net.x, net.he((8, 4), 8)))
    before, run = optimize(net.done(y), "fuse-gemm")
    assert fired(run) == {"matmul-add-to-gemm": 1} and ops(run.graph) == {"Gemm": 1}
    assert_same_numerics(before, run.graph)


def test_batched_matmul_stays():
    net = Net((2, 3, 8))
    y = net.node(Add, net.node(MatMul, net.x, net.he((8, 4), 8)), net.const(np.arange(4.0), "c"))
    _, run = optimize(net.done(y), "fuse-gemm")
    assert not run.changed and "not a matrix" in declined(run)[0]


def test_an_add_that_grows_the_product_stays():
    net = Net((1, 8))
    y = net.node(Add, net.node(MatMul, net.x, net.he((8, 4), 8)), net.const(np.ones((3, 4)), "c"))
    _, run = optimize(net.done(y), "fuse-gemm")
    assert not run.changed and "does not broadcast to the product's shape [1, 4]" in declined(run)[0]


def test_classifier_head_reshapes_become_one_flatten():
    net = Net((2, 6, 5, 5))
    pooled = net.node(Squeeze, net.node(GlobalAveragePool, net.x), axes=(3,))
    y = net.node(Gemm, net.node(Reshape, pooled, shape=(2, -1)), net.he((3, 6), 6), transB=1)
    before, run = optimize(net.done(y), "simplify-movement", "fuse-gemm")
    assert fired(run) == {"merge-reshapes": 1, "flatten-before-gemm": 1}
    assert ops(run.graph) == {"GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}
    assert run.graph.nodes[1].op is Flatten and run.graph.nodes[1].attrs.axis == 1
    assert_same_numerics(before, run.graph, tol=0)
