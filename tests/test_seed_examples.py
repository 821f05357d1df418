"""The lecture notes' worked examples (../shared/seeds/) as oracles.

Expected values are the seeds' own hand-worked numbers; where a seed shows only the
question (the second Cartesian-axes filter), the expected output is worked by hand in the
comment beside it.
"""

import numpy as np
import pytest

from cnncompile import Graph, TensorType, run_reference
from cnncompile.algorithms.windows import exact_output_size
from cnncompile.errors import ShapeError
from cnncompile.ops.conv import Conv
from cnncompile.ops.pool import MaxPool
from cnncompile.tools.inspect import layer_table


def conv_graph(image: np.ndarray, filters: np.ndarray, bias: np.ndarray | None = None, **attrs) -> Graph:
    graph = Graph("seed")
    x = graph.add_input("x", TensorType(image.shape))
    operands = [x, graph.add_constant(filters.astype(np.float32), "w")]
    if bias is not None:
        operands.append(graph.add_constant(bias.astype(np.float32), "b"))
    graph.mark_outputs(*graph.add_node(Conv, operands, **attrs))
    return graph


def conv(image, filters, bias=None, **attrs) -> np.ndarray:
    image = np.asarray(image, np.float32)[None, None]
    filters = np.asarray(filters, np.float64)
    filters = filters.reshape(-1, 1, *filters.shape[-2:])
    graph = conv_graph(image, filters, bias, **attrs)
    return next(iter(run_reference(graph, {"x": image}).values()))[0]


# 000_b9a68c163ec817d4.txt, "Stride": a 4x4 image zero-padded to 6x6, filter [[1,0],[0,0.5]].
STRIDE_IMAGE = [[1, 0, 0.5, 0.5], [0, 0.5, 1, 0], [0, 1, 0.5, 1], [1, 0.5, 0.5, 1]]
STRIDE_FILTER = [[1, 0], [0, 0.5]]


def test_padded_image_stride_1():
    expected = [[0.5, 0, 0.25, 0.25, 0], [0, 1.25, 0.5, 0.5, 0.5], [0, 0.5, 0.75, 1.5, 0],
                [0.5, 0.25, 1.25, 1, 1], [0, 1, 0.5, 0.5, 1]]
    out = conv(STRIDE_IMAGE, STRIDE_FILTER, pads=(1, 1, 1, 1))
    np.testing.assert_array_equal(out[0], expected)


def test_padded_image_stride_2():
    expected = [[0.5, 0.25, 0], [0, 0.75, 0], [0, 0.5, 1]]
    out = conv(STRIDE_IMAGE, STRIDE_FILTER, pads=(1, 1, 1, 1), strides=(2, 2))
    np.testing.assert_array_equal(out[0], expected)


# 000_b9a68c163ec817d4.txt, "A Convolution Exercise": does the image depict Cartesian axes?
AXES_IMAGE = [[0, 1, 0, 1], [0, 1, 0, 1], [1, 1, 1, 1], [0, -2, 0, -2]]
VERTICAL = [[-0.5, 1, -0.5]] * 3
HORIZONTAL = [[-0.5] * 3, [1] * 3, [-0.5] * 3]


def test_cartesian_axes_filters():
    out = conv(AXES_IMAGE, [VERTICAL, HORIZONTAL])
    # The seed works the vertical filter out to [[2, -2], [-1, 1]].
    np.testing.assert_array_equal(out[0], [[2, -2], [-1, 1]])
    # The horizontal filter by hand: -0.5 * (row sum above) + (row sum) - 0.5 * (row sum below)
    # over each 3-column window; e.g. top-left: rows sum to 1, 1, 3 -> -0.5 + 1 - 1.5 = -1.
    np.testing.assert_array_equal(out[1], [[-1, -0.5], [3.5, 4]])


def test_cartesian_axes_then_max_pool():
    """The seed's follow-up: max-pool each filter's 2x2 map to one response."""
    graph = conv_graph(np.zeros((1, 1, 4, 4), np.float32), np.array([[VERTICAL], [HORIZONTAL]], np.float32))
    pooled = graph.add_node(MaxPool, graph.outputs, kernel_shape=(2, 2))
    graph.outputs[:] = pooled
    image = np.asarray(AXES_IMAGE, np.float32)[None, None]
    out = run_reference(graph, {"x": image})[pooled[0].name]
    np.testing.assert_array_equal(out.reshape(-1), [2, 4])


# 002_3854a9669a47f5a4.txt, "What is a convolution": 5x5 binary image, 3x3 filter, bias 0.
BINARY_IMAGE = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
X_FILTER = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]


def test_binary_image_scan():
    out = conv(BINARY_IMAGE, X_FILTER, bias=np.zeros(1))
    np.testing.assert_array_equal(out[0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_binary_image_stride_2():
    out = conv(BINARY_IMAGE, X_FILTER, bias=np.zeros(1), strides=(2, 2))
    np.testing.assert_array_equal(out[0], [[4, 4], [2, 4]])


# 003_05d30b389bd75c97.txt: output size (N - F) / stride + 1, and the case that does not fit.
@pytest.mark.parametrize("size, kernel, pad, stride, expected", [
    (7, 3, 0, 1, 5), (7, 3, 0, 2, 3), (32, 5, 2, 1, 32), (227, 11, 0, 4, 55), (55, 3, 0, 2, 27),
    (27, 5, 2, 1, 27), (224, 3, 1, 1, 224), (5, 3, 0, 2, 2),
])
def test_output_size_formula(size, kernel, pad, stride, expected):
    assert exact_output_size(size, kernel, pad, stride) == expected


def test_seven_by_seven_stride_three_does_not_fit():
    with pytest.raises(ShapeError, match=r"\(7 - 3 \+ 2\*0\) / 3 \+ 1 = 2\.33"):
        exact_output_size(7, 3, 0, 3)


def conv_layer(in_shape, filters, kernel, stride=1, pad=0, bias=True):
    graph = Graph("layer")
    x = graph.add_input("x", TensorType(in_shape))
    weights = graph.add_constant(np.zeros((filters, in_shape[1], kernel, kernel), np.float32), "w")
    operands = [x, weights] + ([graph.add_constant(np.zeros(filters, np.float32), "b")] if bias else [])
    graph.mark_outputs(*graph.add_node(Conv, operands, strides=(stride, stride), pads=(pad,) * 4))
    return layer_table(graph)[0]


def test_filter_bank_has_56_parameters():
    """000: 2 filters of 3x3x3 plus one bias each, stride 2, zero-padding 1."""
    assert conv_layer((1, 3, 5, 5), filters=2, kernel=3, stride=2, pad=1).parameters == 56


def test_ten_5x5_filters_on_cifar_sized_input():
    """002: 10 5x5 filters, stride 1, pad 2, on 3x32x32: 760 parameters, 768K multiply-adds."""
    row = conv_layer((1, 3, 32, 32), filters=10, kernel=5, stride=1, pad=2)
    assert row.output_shape == (1, 10, 32, 32)
    assert row.parameters == 760
    assert row.flops == 2 * 768_000


def test_alexnet_conv1():
    """003: 227x227x3 input, 96 11x11 filters at stride 4 -> 55x55x96, (11*11*3)*96 = ~35K weights."""
    row = conv_layer((1, 3, 227, 227), filters=96, kernel=11, stride=4, bias=False)
    assert row.output_shape == (1, 96, 55, 55)
    assert row.parameters == 11 * 11 * 3 * 96 == 34_848


def test_max_pool_2x2_stride_2():
    """002/003: max pool with 2x2 filters and stride 2 gives [[6, 8], [3, 4]] (cs231n's slice)."""
    graph = Graph("pool")
    x = graph.add_input("x", TensorType((1, 1, 4, 4)))
    graph.mark_outputs(*graph.add_node(MaxPool, [x], kernel_shape=(2, 2), strides=(2, 2)))
    image = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)[None, None]
    out = next(iter(run_reference(graph, {"x": image}).values()))
    np.testing.assert_array_equal(out[0, 0], [[6, 8], [3, 4]])
