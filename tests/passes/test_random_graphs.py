"""Property: random CNN graphs built from the registry go through O3 with the verifier green
after every pass, their outputs within a float64 tolerance, and a second O3 run changes nothing."""

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnncompile.ops.elementwise import (
    Add, Clip, Dropout, Gelu, HardSigmoid, HardSwish, Identity, LeakyRelu, Mul, Relu, Sigmoid, Sum, Tanh,
)
from cnncompile.ops.linalg import Gemm, MatMul
from cnncompile.ops.pool import GlobalAveragePool, MaxPool
from cnncompile.ops.tensor import Concat, Flatten, Pad, Reshape, Transpose
from cnncompile.passes import preset, run_pipeline
from pass_harness import Net, assert_same_numerics

TOLERANCE = 1e-10  # float64 in, float64 folds: only reassociation separates before from after
ACTIVATIONS = [(Relu, {}), (Clip, dict(min=0.0, max=6.0)), (LeakyRelu, dict(alpha=0.2)), (Sigmoid, {}),
               (HardSigmoid, {}), (HardSwish, {}), (Gelu, {}), (Tanh, {})]


def conv(net, y, draw, out=None):
    channels = y.type.shape[1]
    kernel, dilation = draw(st.sampled_from([(1, 1), (3, 1), (3, 2)]))
    group = draw(st.sampled_from([1, math.gcd(channels, out or channels)]))
    out = out or draw(st.sampled_from([2, 4, 6]))
    out = out if out % group == 0 else group
    return net.conv(y, out, kernel, dilation=dilation, group=group, bias=draw(st.booleans()))


def activation(net, y, draw):
    op, attrs = draw(st.sampled_from(ACTIVATIONS))
    return net.node(op, y, **attrs)


def residual(net, y, draw):
    body = net.bn(conv(net, y, draw, out=y.type.shape[1]))
    total = net.node(draw(st.sampled_from([Add, Sum])), *draw(st.permutations([body, y])))
    return activation(net, total, draw) if draw(st.booleans()) else total


def per_channel(net, y, draw):
    c = y.type.shape[1]
    shape = draw(st.sampled_from([(c, 1, 1), (1, c, 1, 1), ()]))
    return net.node(draw(st.sampled_from([Mul, Add])), y, net.const(net.rng.uniform(0.5, 1.5, shape), "k"))


LAYERS = {
    "conv": conv,
    "conv-bn-act": lambda net, y, draw: activation(net, net.bn(conv(net, y, draw)), draw),
    "activation": activation,
    "bn": lambda net, y, draw: net.bn(y),
    "residual": residual,
    "silu": lambda net, y, draw: net.node(Mul, y, net.node(Sigmoid, y)),
    "per-channel": per_channel,
    "pad-conv": lambda net, y, draw: net.conv(net.node(Pad, y, pads=(0, 0, 1, 2, 0, 0, 1, 0)), 4, 3, pad=0),
    "identity": lambda net, y, draw: net.node(draw(st.sampled_from([Identity, Dropout])), y),
    "maxpool": lambda net, y, draw: net.node(MaxPool, y, kernel_shape=(3, 3), pads=(1, 1, 1, 1)),
    "concat": lambda net, y, draw: net.node(Concat, y, conv(net, y, draw), axis=1),
    "transposes": lambda net, y, draw: net.node(Transpose, net.node(Transpose, y, perm=(0, 2, 3, 1)),
                                                perm=(0, 3, 1, 2)),
    "reshapes": lambda net, y, draw: net.node(Reshape, net.node(Flatten, y, axis=2), shape=y.type.shape),
}


def head(net, y, draw):
    kind = draw(st.sampled_from(["none", "gemm", "matmul"]))
    if kind == "none":
        return y
    features = net.node(Flatten, net.node(GlobalAveragePool, y), axis=1)
    c = features.type.shape[1]
    if kind == "gemm":
        return net.bn(net.node(Gemm, features, net.he((3, c), c), transB=1))
    return net.node(Add, net.node(MatMul, features, net.he((c, 3), c)), net.const(np.arange(3.0), "bias"))


@st.composite
def cnns(draw):
    net = Net((1, draw(st.sampled_from([2, 4])), 6, 6), seed=draw(st.integers(0, 2 ** 16)))
    y = net.x
    for _ in range(draw(st.integers(1, 6))):
        y = LAYERS[draw(st.sampled_from(sorted(LAYERS)))](net, y, draw)
    return net.done(head(net, y, draw))


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cnns())
def test_o3_is_verified_exact_and_idempotent(graph):
    before = graph.copy()
    first = run_pipeline(graph, preset("O3").steps(), verify=True)
    assert_same_numerics(before, first.graph, TOLERANCE)
    text = str(first.graph)
    second = run_pipeline(first.graph, preset("O3").steps(), verify=True)
    assert not second.changed, [dict(r.log.fired) for r in second.records if r.changed]
    assert str(second.graph) == text
    assert not {n.op.name for n in second.graph.nodes} & {"BatchNormalization", "Identity", "Dropout"}
