"""The DSL: layers compose into verified graphs whose numbers match onnxruntime and NumPy.

Expected values come from the seeds' formulas, NumPy transcriptions of each layer's
definition, or onnxruntime on the exported file; never from the DSL itself.
"""

import math

import numpy as np
import onnx
import pytest

import cnncompile
from cnncompile.frontends.dsl import (
    LRN, AvgPool, BatchNorm, ChannelShuffle, Clip, Concat, Conv, DepthwiseConv, Dropout, Elu, Flatten, Gelu,
    GeluApproximation, GlobalAvgPool, GlobalMaxPool, HardSigmoid, HardSwish, Highway, Identity, LayerNorm,
    LayerScale, LeakyRelu, Linear, MaxPool, Model, NormOver, PRelu, Relu, ReLU6, Residual, Selu, Sequential, Sigmoid,
    SiLU, Softmax, Softplus, Softsign, Tanh, Weights,
)
from cnncompile.numerics import relative_error
from cnncompile.ops import REGISTRY
from cnncompile.ops import elementwise as E
from cnncompile.ops.registry import same_as_first
from dsl_harness import assert_matches_ort, ort_error, random_inputs, run_ort


def run(graph: cnncompile.Graph, x: np.ndarray) -> np.ndarray:
    return cnncompile.run_reference(graph, {"input": x})[graph.outputs[0].name]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# -- shapes: the seeds' (W - K + 2P) / S + 1 in one, two and three dimensions ---------------


@pytest.mark.parametrize("spatial, kernel, stride, pad, expected", [
    ((101,), 9, 1, 0, (93,)),             # 002: a 9-frame window scanned over 101 spectrogram frames
    ((32, 32), 5, 1, 2, (32, 32)),        # 002: 5x5 filters, pad 2 keep 32x32
    ((227, 227), 11, 4, 0, (55, 55)),     # 003: AlexNet CONV1, (227 - 11) / 4 + 1 = 55
    ((7, 7), 3, 2, 0, (3, 3)),            # 003: 7x7 input, 3x3 filter, stride 2 => 3x3
    ((16, 112, 112), 3, 1, 1, (16, 112, 112)),
    ((8, 31, 31), (3, 5, 5), (1, 2, 2), (1, 2, 2), (8, 16, 16)),
])
def test_conv_output_size_in_1d_2d_3d(spatial, kernel, stride, pad, expected):
    graph = Conv(4, kernel, stride=stride, pad=pad).build((1, 2, *spatial))
    assert graph.outputs[0].type.shape == (1, 4, *expected)


@pytest.mark.parametrize("layer, spatial, expected", [
    (MaxPool(3, stride=2), (7,), (3,)),                # 001: 1-D max pooling, width 3, stride 2
    (AvgPool(2), (4, 4), (2, 2)),                      # 001: 2-D average pooling 2x2, stride 2
    (MaxPool(2), (224, 224), (112, 112)),              # 003: VGG's POOL2
    (MaxPool((1, 2, 2)), (4, 8, 8), (4, 4, 4)),        # pooling space before time in a video clip
    (AvgPool(3, stride=2, ceil=True), (56, 56), (28, 28)),   # ceil((56 - 3) / 2) + 1
])
def test_pool_output_size_in_1d_2d_3d(layer, spatial, expected):
    assert layer.build((1, 3, *spatial)).outputs[0].type.shape == (1, 3, *expected)


def test_average_pool_values_match_numpy():
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)
    expected = x.reshape(1, 2, 2, 2, 2, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(run(AvgPool(2).build(x.shape), x), expected, rtol=1e-6)


def test_grouped_and_depthwise_weight_shapes():
    grouped = Conv(64, 3, pad=1, groups=4, bias=False).build((1, 32, 8, 8), weights=Weights.PLACEHOLDER)
    assert [a.shape for a in grouped.constants.values()] == [(64, 8, 3, 3)]
    depthwise = DepthwiseConv(3, pad=1, multiplier=2).build((1, 16, 8, 8), weights=Weights.PLACEHOLDER)
    assert [a.shape for a in depthwise.constants.values()] == [(32, 1, 3, 3), (32,)]
    assert depthwise.nodes[0].attrs.group == 16
    assert depthwise.outputs[0].type.shape == (1, 32, 8, 8)


# -- numerics against onnxruntime on the exported file -------------------------------------


def test_a_2d_net_of_every_structural_layer_matches_onnxruntime():
    net = Sequential(
        Conv(12, 3, pad=1, name="conv1"), BatchNorm(name="bn1"), Relu(),
        Residual(Sequential(Conv(12, 3, pad=1, bias=False), BatchNorm(), Relu(), Conv(12, 3, pad=1)), after=Relu()),
        Residual(Sequential(Conv(24, 3, stride=2, pad=1), BatchNorm()),
                 shortcut=Sequential(Conv(24, 1, stride=2, bias=False), BatchNorm()), after=Relu()),
        Concat(Conv(8, 1), Sequential(Conv(8, 1), Conv(16, 3, pad=1)), MaxPool(3, stride=1, pad=1), name="mixed"),
        Concat(Identity(), Sequential(BatchNorm(), Relu(), Conv(6, 3, pad=1), name=""), name="dense"),
        Conv(54, 1, groups=3), ChannelShuffle(3), DepthwiseConv(3, pad=1), LRN(5, bias=2.0),
        Highway(Sequential(Conv(54, 3, pad=1), Relu()), Conv(54, 3, pad=1)),
        LayerNorm(), LayerScale(), AvgPool(2), Dropout(0.3),
        GlobalAvgPool(), Flatten(), LayerNorm(NormOver.FEATURES), Linear(10), Softmax(),
    )
    assert_matches_ort(net.build((2, 3, 16, 16), seed=3, strict=False), seed=3)


def test_a_1d_net_matches_onnxruntime():
    net = Sequential(Conv(16, 5), BatchNorm(), Relu(), MaxPool(3, stride=2), Conv(8, 3, dilation=2), Relu(),
                     GlobalMaxPool(), Flatten(), Linear(2))
    assert_matches_ort(net.build((2, 10, 41), seed=1), seed=1)


def test_a_3d_net_matches_onnxruntime():
    net = Sequential(Conv(8, 3, pad=1), BatchNorm(), Relu(), MaxPool((1, 2, 2)), Conv(8, (3, 1, 1), groups=2),
                     AvgPool(2), GlobalAvgPool(), Flatten(), Linear(3))
    assert_matches_ort(net.build((1, 2, 6, 8, 8), seed=2), seed=2)


ACTIVATIONS = [
    Relu(), LeakyRelu(0.1), PRelu(), Elu(0.7), Selu(), Sigmoid(), Tanh(), HardSigmoid(), HardSwish(),
    Gelu(), Gelu(GeluApproximation.TANH), Softplus(), Softsign(), Clip(-1.0, 2.0), ReLU6(), SiLU(),
]


def test_every_activation_in_the_registry_has_a_layer():
    """The unary same-shape ops of the elementwise family (bar Identity), plus PRelu, are the activations."""
    registry_activations = {op.name for op in REGISTRY.values()
                            if op.shape_rule is same_as_first and op.kernel.__module__ == E.__name__
                            and op.inputs in (("X",), ("input",)) and op is not E.Identity} | {"PRelu"}
    graph = Sequential(*ACTIVATIONS).build((1, 4, 5, 5))
    assert registry_activations <= {node.op.name for node in graph.nodes}


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: repr(a))
def test_each_activation_matches_onnxruntime(activation):
    graph = activation.build((2, 3, 6, 6))
    inputs = {"input": 4 * random_inputs(graph, 5)["input"]}
    assert inputs["input"].min() < -6 and inputs["input"].max() > 6  # every branch: negatives, bounds, ReLU6's 6
    want = cnncompile.run_reference(graph, inputs)[graph.outputs[0].name]
    assert relative_error(run_ort(cnncompile.to_onnx(graph), inputs)[0], want) <= 1e-5


def test_silu_is_x_times_sigmoid_x():
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32) * 3
    np.testing.assert_allclose(run(SiLU().build(x.shape), x), x * sigmoid(x.astype(np.float64)), rtol=1e-6)


def test_relu6_clips_at_zero_and_six():
    x = np.array([-3, 0, 2.5, 6, 9], np.float32).reshape(1, 5, 1, 1)
    np.testing.assert_array_equal(run(ReLU6().build(x.shape), x).ravel(), [0, 0, 2.5, 6, 6])


def test_prelu_starts_with_slope_one_quarter():
    """He et al. 2015 initialise PReLU slopes to 0.25."""
    x = np.array([-4, -1, 2], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(run(PRelu().build(x.shape), x).ravel(), [-1, -0.25, 2])


def test_channel_shuffle_interleaves_the_groups():
    """ShuffleNet: with g = 3 groups of 2 channels, the output takes one channel from each group in turn."""
    x = np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1) * np.ones((1, 1, 2, 2), np.float32)
    out = run(ChannelShuffle(3).build(x.shape), x)
    np.testing.assert_array_equal(out[0, :, 0, 0], [0, 2, 4, 1, 3, 5])


def test_highway_is_gate_times_transform_plus_carry():
    """The seeds' c(x) x + t(x) f(x) with t = sigmoid(gate) and c = 1 - t."""
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 3)).astype(np.float32)
    out = run(Highway(Tanh(), Identity()).build(x.shape), x)
    t = sigmoid(x.astype(np.float64))
    np.testing.assert_allclose(out, t * np.tanh(x) + (1 - t) * x, rtol=1e-6, atol=1e-7)


def test_residual_adds_its_input_back():
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(run(Residual(Relu()).build(x.shape), x), x + np.maximum(x, 0), rtol=1e-7)


def test_layer_norm_over_channels_normalises_each_position():
    x = np.random.default_rng(3).standard_normal((2, 8, 3, 3)).astype(np.float32) * 5 + 2
    graph = LayerNorm(epsilon=1e-6, name="ln").build(x.shape)
    scale = graph.constants[next(v for v in graph.constants if v.name == "ln.weight")].astype(np.float64)
    shift = graph.constants[next(v for v in graph.constants if v.name == "ln.bias")].astype(np.float64)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=1, keepdims=True), x64.var(axis=1, keepdims=True)
    expected = (x64 - mean) / np.sqrt(var + 1e-6) * scale[:, None, None] + shift[:, None, None]
    np.testing.assert_allclose(run(graph, x), expected, rtol=1e-6, atol=1e-6)


# -- weights: deterministic, He-initialised, named by path ---------------------------------


def test_weights_are_he_normal_and_bn_statistics_in_their_ranges():
    graph = Sequential(Conv(512, 3, name="conv"), BatchNorm(name="bn")).build((1, 256, 5, 5), seed=7)
    arrays = {v.name: a for v, a in graph.constants.items()}
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert arrays["conv.weight"].std() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.01)
    assert abs(arrays["conv.weight"].mean()) < 1e-3
    for name in ("bn.weight", "bn.running_var"):
        assert 0.5 <= arrays[name].min() and arrays[name].max() <= 1.5
    for name in ("conv.bias", "bn.bias", "bn.running_mean"):
        assert arrays[name].std() == pytest.approx(0.1, rel=0.2)


def constants_by_name(graph: cnncompile.Graph) -> dict[str, np.ndarray]:
    return {v.name: a for v, a in graph.constants.items()}


def test_builds_are_deterministic_and_seeded():
    net = Sequential(Conv(8, 3, name="a"), Relu(), Flatten(), Linear(4, name="fc"))
    first, again, other = (constants_by_name(net.build((1, 3, 6, 6), seed=s)) for s in (0, 0, 1))
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["a.weight"], other["a.weight"])


def test_a_weight_depends_on_its_path_not_on_the_layers_before_it():
    short = constants_by_name(Sequential(Conv(8, 3, name="a")).build((1, 3, 6, 6)))
    longer = constants_by_name(Sequential(Relu(name="r"), Conv(8, 3, name="a")).build((1, 3, 6, 6)))
    np.testing.assert_array_equal(short["a.weight"], longer["a.weight"])


def test_names_are_readable_paths():
    block = Residual(Sequential(Conv(8, 3, pad=1, name="conv1"), BatchNorm(name="bn1")),
                     shortcut=Sequential(Conv(8, 1), BatchNorm()), after=Relu())
    graph = Sequential(Sequential(block, name="layer1")).build((1, 4, 6, 6))
    assert [n.name for n in graph.nodes] == [
        "layer1.0.conv1", "layer1.0.bn1", "layer1.0.downsample.0", "layer1.0.downsample.1", "layer1.0.add",
        "layer1.0.relu"]
    assert "layer1.0.conv1.weight" in constants_by_name(graph)


def test_placeholder_weights_cost_no_memory_and_count_the_same():
    net = Sequential(Conv(64, 3), BatchNorm(), Flatten(), Linear(10))
    placeholder = net.build((1, 3, 8, 8), weights=Weights.PLACEHOLDER)
    cnncompile.verify(placeholder)
    assert all(a.strides == (0,) * a.ndim and not a.flags.writeable for a in placeholder.constants.values())
    random = net.build((1, 3, 8, 8))
    assert [a.shape for a in placeholder.constants.values()] == [a.shape for a in random.constants.values()]


def test_model_to_onnx_writes_a_file_onnxruntime_runs(tmp_path):
    model = Model(Sequential(Conv(4, 3, pad=1), Relu(), GlobalAvgPool(), Flatten(), Linear(2)), (1, 3, 8, 8),
                  name="tiny")
    path = model.to_onnx(tmp_path / "tiny.onnx", seed=4)
    onnx.checker.check_model(str(path), full_check=True)
    assert ort_error(model.build(seed=4), path, seed=4) <= 1e-5


def test_sequential_takes_layers_not_lists():
    with pytest.raises(TypeError, match="unpack lists with"):
        Sequential([Relu(), Relu()])


def test_layers_are_values():
    assert Conv(8, 3, pad=1) == Conv(8, 3, pad=1)
    assert Sequential(Relu(), Tanh()) == Sequential(Relu(), Tanh())
    assert hash(Conv(8, 3)) == hash(Conv(8, 3))
