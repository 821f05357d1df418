"""Conv and ConvTranspose against onnxruntime over the attribute space (strides, pads, auto_pad,
dilations, groups, and ConvTranspose's output_padding and output_shape)."""

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops.conv import Conv, ConvTranspose
from onnx_harness import check_node, he_normal


@pytest.mark.parametrize(
    "x_shape, w_shape, attrs",
    [
        ((1, 3, 8, 8), (4, 3, 3, 3), {}),
        ((2, 4, 9, 11), (6, 2, 3, 2), {"group": 2, "strides": [2, 1], "pads": [1, 0, 2, 1], "dilations": [1, 2]}),
        ((1, 8, 10, 10), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),
        ((1, 3, 7, 7), (2, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        ((1, 3, 8, 6), (2, 3, 4, 3), {"strides": [3, 2], "auto_pad": "SAME_LOWER"}),
        ((1, 3, 7, 7), (2, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
        ((2, 5, 17), (4, 5, 5), {"strides": [2], "pads": [2, 1], "dilations": [2]}),
        ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), {"pads": [1, 0, 1, 1, 1, 0], "strides": [1, 2, 2]}),
        ((1, 16, 6, 6), (32, 16, 1, 1), {}),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_matches_onnxruntime(x_shape, w_shape, attrs, bias):
    rng = np.random.default_rng(0)
    constants = {"w": he_normal(rng, w_shape)}
    if bias:
        constants["b"] = rng.standard_normal(w_shape[0]).astype(np.float32)
    check_node("Conv", {"x": rng.standard_normal(x_shape).astype(np.float32)}, constants, **attrs)


@pytest.mark.parametrize(
    "x_shape, w_shape, attrs",
    [
        ((1, 3, 5, 5), (3, 2, 3, 3), {}),
        ((2, 4, 4, 5), (4, 3, 3, 2), {"strides": [2, 3], "pads": [1, 0, 2, 1], "output_padding": [1, 2]}),
        ((1, 4, 5, 4), (4, 2, 3, 3), {"group": 2, "dilations": [2, 1], "strides": [2, 2], "pads": [1, 1, 0, 2]}),
        ((1, 6, 4, 4), (6, 1, 3, 3), {"group": 6, "strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
        ((1, 3, 5, 4), (3, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        ((1, 3, 5, 4), (3, 2, 4, 3), {"strides": [3, 2], "auto_pad": "SAME_LOWER", "output_padding": [2, 1]}),
        ((1, 3, 4, 5), (3, 2, 1, 1), {"strides": [3, 2], "auto_pad": "SAME_UPPER"}),  # kernel shorter than stride
        ((1, 3, 4, 4), (3, 2, 3, 3), {"strides": [2, 2], "auto_pad": "VALID", "output_padding": [1, 0]}),
        ((1, 3, 4, 4), (3, 2, 3, 3), {"strides": [2, 2], "output_shape": [8, 7]}),
        ((1, 3, 4, 4), (3, 2, 3, 3), {"strides": [3, 2], "output_shape": [11, 10]}),  # beyond the scatter
        ((1, 3, 4, 4), (3, 2, 3, 3), {"strides": [2, 2], "output_shape": [6, 8], "auto_pad": "SAME_UPPER"}),
        ((1, 3, 4, 4), (3, 2, 3, 3), {"strides": [2, 2], "output_shape": [7, 6], "auto_pad": "SAME_LOWER"}),
        ((1, 2, 3, 3), (2, 4, 2, 2), {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ((2, 5, 7), (5, 3, 4), {"strides": [3], "dilations": [2], "pads": [2, 1], "output_padding": [2]}),
        ((1, 4, 6), (4, 2, 3), {"group": 2, "auto_pad": "SAME_LOWER", "strides": [2]}),
        ((1, 4, 3, 4, 3), (4, 1, 2, 3, 2), {"group": 2, "strides": [2, 1, 2], "pads": [0, 1, 1, 1, 0, 0]}),
        ((1, 2, 3, 3, 3), (2, 3, 3, 3, 3), {"strides": [2, 2, 2], "auto_pad": "SAME_UPPER", "dilations": [1, 2, 1]}),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose_matches_onnxruntime(x_shape, w_shape, attrs, bias):
    rng = np.random.default_rng(0)
    group = attrs.get("group", 1)
    constants = {"w": he_normal(rng, w_shape, fan_in=w_shape[0] // group * int(np.prod(w_shape[2:])))}
    if bias:
        constants["b"] = rng.standard_normal(w_shape[1] * group).astype(np.float32)
    check_node("ConvTranspose", {"x": rng.standard_normal(x_shape).astype(np.float32)}, constants, **attrs)


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, attrs, message",
    [
        ((1, 3, 4, 4), (4, 2, 3, 3), None, {}, "need W.shape"),
        ((1, 3, 4, 4), (3, 2, 3, 3), None, {"group": 2}, "divisible by group"),
        ((1, 3, 4, 4), (3, 2, 3, 3), None, {"kernel_shape": (2, 2)}, "disagrees with W"),
        ((1, 3, 4, 4), (3, 2, 3, 3), (3,), {}, r"bias must have shape \[2\]"),
        ((1, 3, 4, 4), (3, 2, 3), None, {}, "same rank"),
        ((1, 3, 4, 4), (3, 2, 3, 3), None, {"strides": (2, 2), "output_padding": (2, 0)}, "smaller than strides"),
        ((1, 3, 4, 4), (3, 2, 3, 3), None, {"strides": (2, 2), "output_shape": (11, 9)}, "too large"),
        ((1, 3, 4, 4), (3, 2, 3, 3), None, {"pads": (3, 0, 3, 0)}, "not positive"),
        ((1, 3, 4, 4), (3, 2, 3, 3), None, {"strides": (2,)}, "strides has 1 entries"),
    ],
)
def test_conv_transpose_shape_errors(x_shape, w_shape, b_shape, attrs, message):
    inputs = [TensorType(x_shape), TensorType(w_shape)] + ([TensorType(b_shape)] if b_shape else [])
    with pytest.raises(ShapeError, match=message):
        ConvTranspose.infer(inputs, ConvTranspose.make_attrs(**attrs))


def test_conv_transpose_costs_what_its_adjoint_conv_costs():
    """ConvTranspose(X -> Y) runs Conv(Y -> X)'s multiply-adds backwards."""
    x, w = TensorType((2, 4, 5, 6)), TensorType((4, 3, 3, 2))
    attrs = ConvTranspose.make_attrs(group=2, strides=(2, 3), pads=(1, 0, 0, 1))
    (y,) = ConvTranspose.infer([x, w], attrs)
    conv_attrs = Conv.make_attrs(group=2, strides=(2, 3), pads=(1, 0, 0, 1))
    w_conv = TensorType((4, 3, 3, 2))
    assert Conv.infer([y, w_conv], conv_attrs) == [x]
    assert ConvTranspose.flops([x, w], [y], attrs) == Conv.flops([y, w_conv], [x], conv_attrs)
