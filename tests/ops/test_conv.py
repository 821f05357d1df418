"""Conv against onnxruntime over the attribute space (strides, pads, auto_pad, dilations, groups)."""

import numpy as np
import pytest

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
