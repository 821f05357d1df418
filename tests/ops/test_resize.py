"""Resize against onnxruntime: nearest and linear over scales or sizes, every coordinate
transformation and nearest rounding mode, axes, aspect-ratio policies and tf_crop_and_resize.

onnxruntime's linear mode only runs on 2-D and 3-D tensors and 4-D/5-D ones whose two
outer scales are 1 (or NHWC 4-D), so the N-D linear cases stay inside that set.
"""

import numpy as np
import pytest

from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import TensorType
from cnncompile.ops.resize import CoordinateTransformationMode, Resize, ResizeMode
from onnx_harness import check_node

TRANSFORMS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def floats(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def with_scales(x, scales, **attrs):
    check_node("Resize", {"x": x}, {"scales": floats(*scales)}, input_order=["x", "", "scales"], **attrs)


def with_sizes(x, sizes, **attrs):
    check_node("Resize", {"x": x}, {"sizes": ints(*sizes)}, input_order=["x", "", "", "sizes"], **attrs)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
def test_nearest_scales(transform, nearest_mode):
    with_scales(rand(1, 2, 5, 7), [1, 1, 0.6, 1.7], mode="nearest",
                coordinate_transformation_mode=transform, nearest_mode=nearest_mode)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil"])
def test_nearest_ties_on_exact_halves(transform, nearest_mode):
    """Downsampling by 2 (half_pixel) and upsampling by 2 (asymmetric) land on x.5 exactly."""
    with_scales(rand(1, 1, 8, 6), [1, 1, 0.5, 2], mode="nearest",
                coordinate_transformation_mode=transform, nearest_mode=nearest_mode)


def test_nearest_over_every_dim():
    with_scales(rand(2, 3, 4, 5), [2, 0.7, 1.5, 0.8], mode="nearest")
    with_sizes(rand(3, 4, 5), [5, 2, 9], mode="nearest", nearest_mode="floor")


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_linear_4d_scales(transform):
    with_scales(rand(2, 3, 5, 7), [1, 1, 0.6, 2.3], mode="linear", coordinate_transformation_mode=transform)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_linear_4d_sizes(transform):
    with_sizes(rand(1, 2, 6, 4), [1, 2, 9, 3], mode="linear", coordinate_transformation_mode=transform)


@pytest.mark.parametrize("shape, scales", [
    ((5, 7), [1.5, 0.75]),
    ((4, 5, 6), [2, 1.5, 0.5]),
    ((1, 2, 3, 4, 5), [1, 1, 2, 1.5, 0.6]),
])
@pytest.mark.parametrize("transform", ["half_pixel", "align_corners"])
def test_linear_n_d_is_separable(shape, scales, transform):
    with_scales(rand(*shape), scales, mode="linear", coordinate_transformation_mode=transform)


def test_linear_nhwc_through_axes():
    with_scales(rand(1, 5, 6, 3), [2, 0.5], mode="linear", axes=[1, 2])
    with_sizes(rand(1, 5, 6, 3), [7, 4], mode="linear", axes=[-3, -2], coordinate_transformation_mode="asymmetric")


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_keep_aspect_ratio_policy(policy, mode):
    with_sizes(rand(1, 2, 3, 4), [5, 5], mode=mode, axes=[2, 3], keep_aspect_ratio_policy=policy)


def test_pytorch_half_pixel_to_length_one():
    with_sizes(rand(1, 1, 4, 6), [1, 1, 1, 3], mode="linear", coordinate_transformation_mode="pytorch_half_pixel")


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("roi", [[0.2, 0.1, 0.8, 0.9], [-0.3, 0.25, 1.2, 0.75]])
def test_tf_crop_and_resize(mode, roi):
    check_node("Resize", {"x": rand(1, 2, 6, 8)}, {"roi": floats(*roi), "sizes": ints(5, 3)},
               input_order=["x", "roi", "", "sizes"], mode=mode, axes=[2, 3],
               coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-3.0)


def test_opset11_takes_an_empty_roi_and_the_opset11_attributes():
    check_node("Resize", {"x": rand(1, 2, 4, 5)}, {"roi": floats(), "scales": floats(1, 1, 1.5, 2)},
               opset=11, mode="linear", coordinate_transformation_mode="asymmetric",
               cubic_coeff_a=-0.5, exclude_outside=0)


def test_opset13_empty_scales_with_sizes():
    check_node("Resize", {"x": rand(1, 2, 4, 5)}, {"scales": floats(), "sizes": ints(1, 2, 3, 8)},
               input_order=["x", "", "scales", "sizes"], opset=13, mode="nearest")


def attrs(**values):
    return Resize.make_attrs(**values)


@pytest.mark.parametrize("values, error, message", [
    ({"mode": ResizeMode.CUBIC, "scales": (1.0, 1.0, 2.0, 2.0)}, UnsupportedError, "mode='cubic'"),
    ({"antialias": 1, "scales": (1.0, 1.0, 0.5, 0.5)}, UnsupportedError, "antialias=1"),
    ({"scales": (1.0, 1.0, 2.0, 2.0), "sizes": (1, 3, 8, 8)}, ShapeError, "exactly one of scales and sizes"),
    ({"roi": (1.0, 1.0, 2.0, 2.0)}, ShapeError, "opset-10"),
    ({"scales": (2.0, 2.0)}, ShapeError, "one entry per resized axis"),
    ({"sizes": (1, 3, 0, 8)}, ShapeError, "must be positive"),
])
def test_rejections(values, error, message):
    with pytest.raises(error, match=message):
        Resize.infer([TensorType((1, 3, 4, 4))], attrs(**values))


def test_linear_flops_count_each_separable_pass():
    x = TensorType((1, 3, 4, 4))
    a = attrs(mode=ResizeMode.LINEAR, scales=(1.0, 1.0, 2.0, 2.0))
    out = Resize.infer([x], a)
    assert out[0].shape == (1, 3, 8, 8)
    assert Resize.flops([x], out, a) == 3 * (3 * 8 * 4) + 3 * (3 * 8 * 8)
    nearest = attrs(scales=(1.0, 1.0, 2.0, 2.0))
    assert Resize.flops([x], out, nearest) == 0


def test_half_pixel_symmetric_centres_a_fractional_output():
    """10 -> floor(3.5) = 3 samples: the implied canvas is re-centred on the input."""
    with_scales(rand(1, 10), [1, 0.35], mode="linear", coordinate_transformation_mode="half_pixel_symmetric")
    assert CoordinateTransformationMode("half_pixel_symmetric") is CoordinateTransformationMode.HALF_PIXEL_SYMMETRIC
