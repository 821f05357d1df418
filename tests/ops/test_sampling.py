"""GridSample, AffineGrid, CenterCropPad, Col2Im, MaxUnpool (ops/sampling.py), LpPool and CumProd
against onnxruntime (CumProd, newer than onnxruntime's opsets here, against onnx.reference)."""

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import cnncompile
from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.sampling import Col2ImAttrs, GridSample, GridSampleMode, MaxUnpool, col2im_window
from onnx_harness import check_node, run_ort, single_node_model


def rand(*shape: int, seed: int = 0, low: float | None = None, high: float | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if low is not None:
        return rng.uniform(low, high, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_2d(mode, padding_mode, align_corners):
    """Grid points reach past [-1, 1], several periods for reflection."""
    check_node("GridSample", {"X": rand(2, 3, 5, 6), "grid": rand(2, 4, 7, 2, seed=1, low=-3.5, high=3.5)},
               mode=mode, padding_mode=padding_mode, align_corners=align_corners)


@pytest.mark.parametrize("mode", ["linear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_3d(mode, padding_mode):
    check_node("GridSample", {"X": rand(1, 2, 3, 4, 5), "grid": rand(1, 2, 3, 4, 3, seed=1, low=-1.4, high=1.4)},
               mode=mode, padding_mode=padding_mode)


def test_grid_sample_opset_16_spells_bilinear_and_bicubic():
    for mode in ("bilinear", "bicubic"):
        check_node("GridSample", {"X": rand(1, 2, 4, 4), "grid": rand(1, 3, 3, 2, low=-1.1, high=1.1)},
                   opset=16, mode=mode)
    assert GridSampleMode("bicubic") is GridSampleMode.CUBIC


def test_grid_sample_refuses_what_onnx_does_not_define():
    x, grid = TensorType((1, 2, 3, 4, 5)), TensorType((1, 2, 2, 2, 3))
    with pytest.raises(ShapeError, match="cubic mode samples 2-D images"):
        GridSample.infer([x, grid], GridSample.make_attrs(mode=GridSampleMode.CUBIC))
    with pytest.raises(ShapeError, match=r"grid\[1, 2, 2, 2\] must be \(N, \*out_spatial, 3\)"):
        GridSample.infer([x, TensorType((1, 2, 2, 2))], GridSample.make_attrs())


@pytest.mark.parametrize("size, align_corners", [((2, 3, 4, 5), 0), ((2, 3, 4, 5), 1), ((1, 1, 2, 3, 4), 0),
                                                 ((1, 1, 2, 3, 4), 1)])
def test_affine_grid(size, align_corners):
    spatial = len(size) - 2
    check_node("AffineGrid", {"theta": rand(size[0], spatial, spatial + 1)}, {"size": ints(*size)},
               align_corners=align_corners)


@pytest.mark.parametrize("shape, axes", [((2, 9, 4), None), ((5, 3), (1, 2)), ((7, 2), (-1, 0))])
def test_center_crop_pad(shape, axes):
    attrs = {} if axes is None else {"axes": list(axes)}
    check_node("CenterCropPad", {"x": rand(4, 6, 5)}, {"shape": ints(*shape)}, **attrs)


def test_center_crop_pad_needs_a_size_per_axis():
    graph_model = single_node_model("CenterCropPad", {"x": rand(4, 6)}, {"shape": ints(3, 3, 3)})
    with pytest.raises(ShapeError, match=r"shape \[3, 3, 3\] needs one size per axis"):
        cnncompile.load_onnx(graph_model)


@pytest.mark.parametrize("image, block, attrs", [
    ((5, 5), (2, 2), {}),
    ((5, 6), (2, 2), {"strides": [2, 1], "dilations": [1, 2], "pads": [1, 1, 0, 1]}),
    ((4, 3, 5), (2, 1, 3), {"pads": [0, 1, 1, 1, 0, 0]}),
])
def test_col2im(image, block, attrs):
    window = col2im_window(Col2ImAttrs(image, block, attrs.get("dilations"), attrs.get("pads"), attrs.get("strides")))
    columns = int(np.prod(window.out))
    check_node("Col2Im", {"x": rand(2, 3 * int(np.prod(block)), columns)},
               {"image_shape": ints(*image), "block_shape": ints(*block)}, **attrs)


def test_col2im_names_the_column_count_it_needs():
    model = single_node_model("Col2Im", {"x": rand(1, 4, 7)}, {"image_shape": ints(3, 3), "block_shape": ints(2, 2)})
    with pytest.raises(ShapeError, match=r"must be \(N, C \* 4, 4\)"):
        cnncompile.load_onnx(model)


def test_max_unpool_undoes_max_pool():
    """MaxPool's values and Indices (onnxruntime's) unpooled: as ORT unpools them, every maximum back in place."""
    x = rand(2, 3, 6, 8)
    pool = single_node_model("MaxPool", {"x": x}, attrs={"kernel_shape": [2, 2], "strides": [2, 2]}, n_outputs=2)
    values, indices = run_ort(pool, {"x": x})
    (out,) = check_node("MaxUnpool", {"x": values, "i": indices}, kernel_shape=[2, 2], strides=[2, 2])
    assert np.array_equal(out.reshape(-1)[indices.reshape(-1)], values.reshape(-1))


def test_max_unpool_refuses_an_output_shape_whose_indexing_is_ambiguous():
    attrs = MaxUnpool.make_attrs(kernel_shape=(2, 2), strides=(2, 2), output_shape=(1, 1, 5, 5))
    x = TensorType((1, 1, 2, 2))
    with pytest.raises(UnsupportedError, match="output_shape .* differs from the unpooled shape"):
        MaxUnpool.infer([x, TensorType((1, 1, 2, 2), DType.INT64)], attrs)


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3]},
    {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1], "p": 3},
    {"kernel_shape": [2, 2], "dilations": [2, 1], "ceil_mode": 1, "strides": [2, 2], "p": 1},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
])
def test_lp_pool(attrs):
    check_node("LpPool", {"x": rand(2, 3, 9, 8)}, **attrs)


@pytest.mark.parametrize("exclusive, reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_cumprod(exclusive, reverse, dtype):
    x = np.random.default_rng(0).uniform(-2, 2, (3, 5)).astype(dtype)
    model = single_node_model("CumProd", {"x": x}, {"axis": np.array(-1, np.int64)}, opset=26,
                              attrs={"exclusive": exclusive, "reverse": reverse})
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    got = cnncompile.run_reference(cnncompile.load_onnx(model), {"x": x}, dtype=DType.FLOAT32)["out0"]
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)
