"""Shape errors surface at the layer that causes them, with the numbers and the fix.

The first cases are the seeds' own: "7x7 input, 3x3 filter, stride 3: doesn't fit",
(7 - 3) / 3 + 1 = 2.33, and AlexNet's CONV1 on a 224x224 input, (224 - 11) / 4 + 1.
"""

import pytest

from cnncompile import zoo
from cnncompile.errors import ShapeError
from cnncompile.frontends.dsl import (
    BatchNorm, Concat, Conv, Flatten, Highway, Linear, MaxPool, Relu, Residual, Sequential, Weights,
)


def test_seven_by_seven_stride_three_names_the_layer_formula_and_fixes():
    net = Sequential(Conv(4, 3, pad=1, name="conv1"), Conv(8, 3, stride=3, name="conv2"))
    with pytest.raises(ShapeError) as error:
        net.build((1, 3, 7, 7))
    message = str(error.value)
    assert "layer 'conv2' (Conv)" in message
    assert "(7 - 3 + 2*0) / 3 + 1 = 2.33" in message
    assert "pad=1 gives 3" in message and "strict=False" in message


def test_the_fixes_work():
    assert Conv(8, 3, stride=3, pad=1).build((1, 3, 7, 7)).outputs[0].type.shape == (1, 8, 3, 3)
    floor = Conv(8, 3, stride=3).build((1, 3, 7, 7), strict=False)
    assert floor.outputs[0].type.shape == (1, 8, 2, 2)  # floor(2.33): the last column is dropped


def test_alexnet_conv1_does_not_fit_224():
    with pytest.raises(ShapeError, match=r"layer 'conv1' \(Conv\).*\(224 - 11 \+ 2\*0\) / 4 \+ 1 = 54\.25"):
        zoo.build("alexnet", (1, 3, 224, 224), weights=Weights.PLACEHOLDER)
    graph = zoo.model("alexnet").build((1, 3, 224, 224), strict=False, weights=Weights.PLACEHOLDER)
    assert graph.nodes[0].outputs[0].type.shape == (1, 96, 54, 54)


def test_a_pooling_window_that_does_not_fit_names_the_pool():
    with pytest.raises(ShapeError, match=r"layer 'pool' \(MaxPool\).*\(7 - 2 \+ 2\*0\) / 2 \+ 1 = 3\.50"):
        Sequential(MaxPool(2, name="pool")).build((1, 3, 7, 7))
    assert MaxPool(2, ceil=True).build((1, 3, 7, 7)).outputs[0].type.shape == (1, 3, 4, 4)


def test_residual_channel_mismatch_names_the_block_and_the_projection():
    block = Residual(Sequential(Conv(128, 3, pad=1), BatchNorm()))
    net = Sequential(Conv(64, 3, pad=1, name="stem"), Sequential(block, name="layer1"))
    with pytest.raises(ShapeError) as error:
        net.build((1, 3, 8, 8))
    message = str(error.value)
    assert "layer 'layer1.0' (Residual)" in message
    assert "[1, 128, 8, 8]" in message and "[1, 64, 8, 8]" in message and "channels differ (128 vs 64)" in message
    assert "shortcut=Sequential(Conv(128, 1, stride=1" in message


def test_residual_resolution_mismatch_suggests_a_strided_shortcut():
    block = Residual(Sequential(Conv(64, 3, stride=2, pad=1), BatchNorm()), name="down")
    with pytest.raises(ShapeError, match=r"layer 'down' \(Residual\).*spatial sizes differ.*stride=2"):
        block.build((1, 64, 8, 8), strict=False)


def test_concat_of_mismatched_spatial_sizes_names_the_odd_branch():
    mixed = Concat(Conv(8, 3, pad=1), Conv(8, 3), MaxPool(3, stride=1, pad=1), name="mixed")
    with pytest.raises(ShapeError) as error:
        Sequential(Relu(name="relu"), mixed).build((1, 4, 9, 9))
    message = str(error.value)
    assert "layer 'mixed' (Concat)" in message
    assert "'mixed.branch2' gives [1, 8, 7, 7]" in message and "'mixed.branch2' is the odd one out" in message


def test_grouped_conv_that_does_not_divide_names_the_layer():
    with pytest.raises(ShapeError, match=r"layer 'g' \(Conv\): groups=3 must divide both the input's 8 channels"):
        Conv(12, 1, groups=3, name="g").build((1, 8, 4, 4))


def test_highway_branch_that_changes_shape_names_the_block():
    with pytest.raises(ShapeError, match=r"layer 'hw' \(Highway\): the transform gives \[1, 8, 4, 4\]"):
        Highway(Conv(8, 1), Conv(4, 1), name="hw").build((1, 4, 4, 4))


def test_linear_on_a_feature_map_says_to_flatten():
    with pytest.raises(ShapeError, match=r"layer 'fc' \(Linear\) needs an \(N, features\) input.*Flatten"):
        Sequential(Conv(4, 3), Linear(10, name="fc")).build((1, 3, 8, 8))


def test_conv_after_flatten_says_spatial_layers_come_first():
    with pytest.raises(ShapeError, match=r"layer '1' \(Conv\) needs an \(N, C, \*spatial\) input"):
        Sequential(Flatten(), Conv(4, 3)).build((1, 3, 8, 8))


def test_a_kernel_of_the_wrong_rank_is_named():
    with pytest.raises(ShapeError, match=r"layer 'c': kernel \[3, 3\] has 2 entries but the input has 3 spatial"):
        Conv(4, (3, 3), name="c").build((1, 3, 4, 8, 8))
