"""The layer-wise check passes honest kernels and names a kernel that is wrong in float32."""

import dataclasses

import numpy as np

from cnncompile import Graph, TensorType
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Relu
from cnncompile.tools.layerwise import layerwise_errors


def sloppy(x):
    """Relu that loses precision in float32, as a badly written kernel would."""
    y = np.maximum(x, 0)
    return y + 1e-3 if y.dtype == np.float32 else y


SloppyRelu = dataclasses.replace(Relu, name="SloppyRelu", kernel=sloppy)


def conv_chain(activation) -> Graph:
    rng = np.random.default_rng(0)
    graph = Graph("chain")
    x = graph.add_input("x", TensorType((1, 3, 12, 12)))
    for index in range(3):
        channels = x.type.shape[1]
        w = graph.add_constant((rng.standard_normal((8, channels, 3, 3)) * np.sqrt(2 / (9 * channels)))
                               .astype(np.float32), f"w{index}")
        (x,) = graph.add_node(Conv, [x, w], pads=(1, 1, 1, 1), name=f"conv{index}")
        (x,) = graph.add_node(activation if index == 1 else Relu, [x], name=f"act{index}")
    graph.mark_outputs(x)
    return graph


def test_every_honest_layer_passes():
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    errors = layerwise_errors(conv_chain(Relu), {"x": x})
    assert [e.node for e in errors] == ["conv0", "act0", "conv1", "act1", "conv2", "act2"]
    assert all(e.passed for e in errors)


def test_the_sloppy_layer_is_named_and_only_it():
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    errors = layerwise_errors(conv_chain(SloppyRelu), {"x": x})
    failed = [(e.node, e.op) for e in errors if not e.passed]
    assert failed == [("act1", "SloppyRelu")]
