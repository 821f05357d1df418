"""BatchNorm folding into Conv, ConvTranspose and Gemm, and the rest into ChannelAffine:
the fold math on its own, each rule's structure and numerics, and where it must not fire."""

import numpy as np
import pytest

from cnncompile.ops.conv import Conv, ConvTranspose
from cnncompile.ops.linalg import Gemm
from cnncompile.ops.norm import BatchNormalization
from cnncompile.ops.tensor import Concat
from cnncompile.passes.batchnorm import bn_affine, fold_into_conv, fold_into_conv_transpose, fold_into_gemm
from pass_harness import Net, assert_same_numerics, declined, fired, ops, optimize


def test_bn_affine_is_the_batchnorm_kernel():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((2, 5, 3, 3))
    scale, shift, mean, var = rng.uniform(0.5, 1.5, 5), rng.standard_normal(5), rng.standard_normal(5), \
        rng.uniform(0.5, 1.5, 5)
    a, c = bn_affine(scale, shift, mean, var, 1e-3)
    want = BatchNormalization.run([y, scale, shift, mean, var], BatchNormalization.make_attrs(epsilon=1e-3))[0]
    np.testing.assert_allclose(y * a[:, None, None] + c[:, None, None], want, rtol=1e-14, atol=1e-14)


def test_fold_into_conv_math():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((1, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    a, c = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    attrs = Conv.make_attrs(pads=(1, 1, 1, 1))
    want = Conv.run([x, w, b], attrs)[0] * a[:, None, None] + c[:, None, None]
    w2, b2 = fold_into_conv(w, b, a, c)
    np.testing.assert_allclose(Conv.run([x, w2, b2], attrs)[0], want, rtol=1e-13, atol=1e-13)
    w3, b3 = fold_into_conv(w, None, a, c)
    np.testing.assert_allclose(b3, c)


def test_fold_into_conv_transpose_math_with_groups():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 4, 3, 3)), rng.standard_normal((4, 3, 2, 2))  # 2 groups: M = 6
    a, c = rng.uniform(0.5, 2, 6), rng.standard_normal(6)
    attrs = ConvTranspose.make_attrs(group=2, strides=(2, 2))
    want = ConvTranspose.run([x, w], attrs)[0] * a[:, None, None] + c[:, None, None]
    w2, b2 = fold_into_conv_transpose(w, None, a, c, group=2)
    np.testing.assert_allclose(ConvTranspose.run([x, w2, b2], attrs)[0], want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("trans_b, with_c", [(0, True), (1, True), (1, False)])
def test_fold_into_gemm_math(trans_b, with_c):
    rng = np.random.default_rng(3)
    x, b = rng.standard_normal((2, 5)), rng.standard_normal((3, 5) if trans_b else (5, 3))
    c = rng.standard_normal(3) if with_c else None
    a, shift = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    attrs = Gemm.make_attrs(alpha=0.5, beta=2.0, transB=trans_b)
    want = Gemm.run([x, b] + ([c] if with_c else []), attrs)[0] * a + shift
    b2, c2 = fold_into_gemm(b, c, 2.0, trans_b, a, shift)
    got = Gemm.run([x, b2, c2], Gemm.make_attrs(alpha=0.5, beta=1.0, transB=trans_b))[0]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


CONV_CASES = {
    "plain": dict(),
    "no bias": dict(bias=False),
    "strided": dict(stride=2),
    "grouped": dict(group=2),
    "depthwise": dict(group=8),
    "dilated": dict(dilation=2),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_bn_folds(case):
    net = Net((2, 8, 9, 9))
    y = net.bn(net.conv(net.x, 8, **CONV_CASES[case]))
    y = net.bn(net.conv(y, 8, kernel=1, **CONV_CASES[case]))
    before, run = optimize(net.done(y), "fold-batchnorm")
    assert fired(run) == {"fold-bn-into-conv": 2}
    assert ops(run.graph) == {"Conv": 2}
    assert_same_numerics(before, run.graph)


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_bn_folds(group):
    net = Net((1, 4, 5, 5))
    y = net.bn(net.conv(net.x, 6, kernel=3, stride=2, pad=1, group=group, op=ConvTranspose))
    before, run = optimize(net.done(y), "fold-batchnorm")
    assert fired(run) == {"fold-bn-into-conv-transpose": 1} and ops(run.graph) == {"ConvTranspose": 1}
    assert_same_numerics(before, run.graph)


@pytest.mark.parametrize("trans_b, with_c", [(0, True), (1, False)])
def test_gemm_bn_folds(trans_b, with_c):
    net = Net((3, 6))
    w = net.he((4, 6) if trans_b else (6, 4), 6)
    inputs = [net.x, w] + ([net.const(np.arange(4.0), "c")] if with_c else [])
    y = net.bn(net.node(Gemm, *inputs, transB=trans_b, alpha=0.7, beta=1.5))
    before, run = optimize(net.done(y), "fold-batchnorm")
    assert fired(run) == {"fold-bn-into-gemm": 1} and ops(run.graph) == {"Gemm": 1}
    assert run.graph.nodes[0].attrs.beta == 1.0
    assert_same_numerics(before, run.graph)


def test_shared_weights_are_not_folded():
    net = Net((1, 4, 6, 6))
    first = net.conv(net.x, 4)
    w = net.graph.nodes[0].inputs[1]
    graph = net.done(net.bn(first), net.bn(net.conv(net.x, 4, weight=w)))
    _, run = optimize(graph, "fold-batchnorm")
    assert not run.changed and ops(run.graph)["BatchNormalization"] == 2
    assert "fold-bn-into-conv declined at node 'batchnormalization': 'w' (%w) is shared (also read by node " \
           "'conv_1')" in declined(run)


def test_a_conv_read_elsewhere_is_not_folded():
    net = Net((1, 4, 6, 6))
    y = net.conv(net.x, 4)
    _, run = optimize(net.done(net.bn(y), y), "fold-batchnorm")
    assert not run.changed
    assert any("its output %conv is a graph output" in r for r in declined(run))


def test_non_constant_statistics_are_not_folded():
    net = Net((1, 4, 6, 6))
    stats = [net.graph.add_input(name, net.const(np.ones(4)).type) for name in ("scale", "shift", "mean", "var")]
    before, run = optimize(net.done(net.bn(net.conv(net.x, 4), stats=stats)), "fold-batchnorm", "batchnorm-to-affine")
    assert not run.changed and ops(run.graph)["BatchNormalization"] == 1
    assert "'scale' (%scale) is not a constant" in declined(run)[0]


def test_batchnorm_with_no_host_becomes_channel_affine():
    net = Net((2, 4, 5, 5))
    y = net.bn(net.node(Concat, net.x, net.conv(net.x, 4), axis=1))
    before, run = optimize(net.done(y), "fold-batchnorm", "batchnorm-to-affine")
    assert fired(run) == {"batchnorm-to-affine": 1}
    assert ops(run.graph) == {"Conv": 1, "Concat": 1, "ChannelAffine": 1}
    assert_same_numerics(before, run.graph)


def test_batchnorm_on_a_matrix_becomes_channel_affine():
    net = Net((3, 5))
    before, run = optimize(net.done(net.bn(net.x)), "batchnorm-to-affine")
    assert ops(run.graph) == {"ChannelAffine": 1}
    assert_same_numerics(before, run.graph)
