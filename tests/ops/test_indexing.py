"""Index-driven reads and writes against onnxruntime and the ONNX spec's worked examples:
Expand, Tile, GatherElements, GatherND, ScatterElements, ScatterND, Compress, and
SpaceToDepth (declared beside DepthToSpace in ops/tensor.py)."""

import numpy as np
import pytest

import cnncompile
from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.indexing import GatherElements, GatherND, ScatterElements, ScatterND, ScatterReduction, Tile
from cnncompile.ops.tensor import DepthToSpace, DepthToSpaceMode, SpaceToDepth
from onnx_harness import check_node, single_node_model


def rand(*shape: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def ints(*values: int, dtype=np.int64) -> np.ndarray:
    return np.array(values, dtype=dtype)


def draw_indices(shape, low, high, seed=1, dtype=np.int64) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, shape).astype(dtype)


def infer(op, *types, **attrs):
    return op.infer(list(types), op.make_attrs(**attrs))


# -- Expand and Tile ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, new_shape", [
    ((3, 1), (2, 1, 6)),      # spec: rank grows, 1s stretch
    ((3, 1), (3, 4)),
    ((2, 3, 1), (1, 1, 3, 5)),  # the shape's 1s keep the input's larger dims
    ((1,), (4,)),
])
def test_expand(shape, new_shape):
    check_node("Expand", {"x": rand(*shape)}, {"shape": ints(*new_shape)})


def test_expand_of_integers_and_an_incompatible_shape():
    check_node("Expand", {"x": draw_indices((2, 1), -9, 9)}, {"shape": ints(2, 3)})
    model = single_node_model("Expand", {"x": rand(3, 2)}, {"shape": ints(3, 4)})
    with pytest.raises(cnncompile.CnnCompileError, match="does not broadcast with shape"):
        cnncompile.load_onnx(model)


@pytest.mark.parametrize("shape, repeats", [((2, 3, 4), (2, 1, 3)), ((3,), (4,)), ((2, 2), (1, 1))])
def test_tile(shape, repeats):
    check_node("Tile", {"x": rand(*shape)}, {"repeats": ints(*repeats)})


def test_tile_spec_example_and_wrong_repeats():
    x = np.array([[0, 1], [2, 3]], np.float32)
    (y,) = Tile.run([x], Tile.make_attrs(repeats=(2, 2)))
    np.testing.assert_array_equal(y, [[0, 1, 0, 1], [2, 3, 2, 3], [0, 1, 0, 1], [2, 3, 2, 3]])
    with pytest.raises(ShapeError, match="one non-negative entry per axis"):
        infer(Tile, TensorType((2, 2)), repeats=(2,))


def test_run_time_repeats_are_refused_naming_the_node():
    model = single_node_model("Tile", {"x": rand(2, 3), "repeats": ints(2, 1)})
    with pytest.raises(UnsupportedError, match=r"node 'tile_0' \(Tile\): input 1 \('repeats'\) must be known at "
                                               "compile time"):
        cnncompile.load_onnx(model)


# -- GatherElements and GatherND ----------------------------------------------------------------------


def test_gather_elements_spec_examples():
    data = np.array([[1, 2], [3, 4]], np.float32)
    (y,) = GatherElements.run([data, ints(0, 0, 1, 0).reshape(2, 2)], GatherElements.make_attrs(axis=1))
    np.testing.assert_array_equal(y, [[1, 1], [4, 3]])
    data = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
    (y,) = GatherElements.run([data, ints(-1, -2, 0, -2, 0, 0).reshape(2, 3)], GatherElements.make_attrs())
    np.testing.assert_array_equal(y, [[7, 5, 3], [4, 2, 3]])


@pytest.mark.parametrize("data_shape, index_shape, axis", [
    ((3, 5, 4), (3, 2, 4), 1), ((4, 3), (6, 3), 0), ((2, 3, 4), (1, 2, 4), -1), ((5,), (7,), 0),
])
def test_gather_elements(data_shape, index_shape, axis):
    size = data_shape[axis]
    indices = draw_indices(index_shape, -size, size, dtype=np.int32 if axis == 0 else np.int64)
    check_node("GatherElements", {"data": rand(*data_shape), "indices": indices}, axis=axis)


def test_gather_elements_rejects_out_of_range_indices_and_wider_indices():
    with pytest.raises(ShapeError, match=r"indices range over \[0, 3\], outside axis 0"):
        GatherElements.run([rand(3, 2), ints(0, 3).reshape(2, 1)], GatherElements.make_attrs())
    with pytest.raises(ShapeError, match="must not exceed data"):
        infer(GatherElements, TensorType((3, 2)), TensorType((2, 4), DType.INT64), axis=0)


def test_gather_nd_spec_examples():
    data = np.arange(8, dtype=np.int32).reshape(2, 2, 2)
    cases = [
        (np.arange(4, dtype=np.int32).reshape(2, 2), ints(0, 0, 1, 1).reshape(2, 2), 0, [0, 3]),
        (np.arange(4, dtype=np.int32).reshape(2, 2), ints(1, 0).reshape(2, 1), 0, [[2, 3], [0, 1]]),
        (data, ints(0, 1, 1, 0).reshape(2, 2), 0, [[2, 3], [4, 5]]),
        (data, ints(0, 1, 1, 0).reshape(2, 1, 2), 0, [[[2, 3]], [[4, 5]]]),
        (data, ints(1, 0).reshape(2, 1), 1, [[2, 3], [4, 5]]),
    ]
    for array, indices, batch_dims, want in cases:
        (y,) = GatherND.run([array, indices], GatherND.make_attrs(batch_dims=batch_dims))
        np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("data_shape, index_shape, batch_dims", [
    ((2, 3, 4), (5, 2), 0), ((2, 3, 4), (2, 2, 3), 0), ((2, 3, 4, 5), (2, 6, 2), 1), ((2, 3, 4), (2, 3, 1), 2),
])
def test_gather_nd(data_shape, index_shape, batch_dims):
    low = -min(data_shape[batch_dims:batch_dims + index_shape[-1]])
    indices = draw_indices(index_shape, low, -low)
    check_node("GatherND", {"data": rand(*data_shape), "indices": indices}, batch_dims=batch_dims)


def test_gather_nd_shape_errors():
    with pytest.raises(ShapeError, match="batch dims"):
        infer(GatherND, TensorType((2, 3)), TensorType((3, 1), DType.INT64), batch_dims=1)
    with pytest.raises(ShapeError, match="tuple length"):
        infer(GatherND, TensorType((2, 3)), TensorType((4, 3), DType.INT64))


# -- the scatters -------------------------------------------------------------------------------------


def test_scatter_elements_spec_examples():
    data = np.zeros((3, 3), np.float32)
    updates = np.array([[1.0, 1.1, 1.2], [2.0, 2.1, 2.2]], np.float32)
    (y,) = ScatterElements.run([data, ints(1, 0, 2, 0, 2, 1).reshape(2, 3), updates], ScatterElements.make_attrs())
    np.testing.assert_array_equal(y, np.array([[2.0, 1.1, 0.0], [1.0, 0.0, 2.2], [0.0, 2.1, 1.2]], np.float32))
    data = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]], np.float32)
    attrs = ScatterElements.make_attrs(axis=1, reduction=ScatterReduction.ADD)
    (y,) = ScatterElements.run([data, ints(1, 1).reshape(1, 2), np.array([[1.1, 2.1]], np.float32)], attrs)
    np.testing.assert_allclose(y, [[1.0, 5.2, 3.0, 4.0, 5.0]], rtol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements(reduction):
    data = rand(4, 5, 3)
    # reduction none with duplicate positions is undefined in ONNX: its indices are a permutation
    indices = (np.stack([np.random.default_rng(s).permutation(5)[:2] for s in range(4)])[:, :, None]
               .repeat(2, axis=2) if reduction == "none" else draw_indices((4, 2, 2), -5, 5))
    check_node("ScatterElements", {"data": data, "indices": indices, "updates": rand(4, 2, 2, seed=3)},
               axis=1, reduction=reduction)


def test_scatter_elements_with_duplicates_and_no_reduction_keeps_the_last():
    data = np.zeros((1, 4), np.float32)
    attrs = ScatterElements.make_attrs(axis=1)
    (y,) = ScatterElements.run([data, ints(2, -2, 0).reshape(1, 3), np.array([[5, 7, 9]], np.float32)], attrs)
    np.testing.assert_array_equal(y, [[9, 0, 7, 0]])


def test_scatter_nd_spec_examples():
    data = np.arange(1, 9, dtype=np.float32)
    (y,) = ScatterND.run([data, ints(4, 3, 1, 7).reshape(4, 1), ints(9, 10, 11, 12).astype(np.float32)],
                         ScatterND.make_attrs())
    np.testing.assert_array_equal(y, [1, 11, 3, 10, 9, 6, 7, 12])
    data = np.ones((2, 2), np.float32)
    attrs = ScatterND.make_attrs(reduction=ScatterReduction.MUL)
    (y,) = ScatterND.run([data, ints(0, 1, 0, 1).reshape(2, 2), np.array([3, 4], np.float32)], attrs)
    np.testing.assert_array_equal(y, [[1, 12], [1, 1]])


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd(reduction):
    rows = ints(3, -4, 1).reshape(3, 1) if reduction == "none" else draw_indices((3, 1), -4, 4)
    check_node("ScatterND", {"data": rand(4, 4, 4), "indices": rows, "updates": rand(3, 4, 4, seed=5)},
               reduction=reduction)
    tuples = ints(0, 1, 2, -1, 3, 0).reshape(3, 2) if reduction == "none" else draw_indices((3, 2), -4, 4)
    check_node("ScatterND", {"data": rand(4, 4, 4), "indices": tuples, "updates": rand(3, 4, seed=6)},
               reduction=reduction)


def test_scatter_nd_updates_must_fit():
    with pytest.raises(ShapeError, match="updates float32\\[3x2\\] must be float32\\[3, 4\\]"):
        infer(ScatterND, TensorType((4, 4)), TensorType((3, 1), DType.INT64), TensorType((3, 2)))


# -- Compress -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("condition, axis", [
    ([0, 1, 1], 0), ([0, 1], 1), ([0, 1, 0, 0, 1], None), ([1, 0], -1), ([True], 0),
])
def test_compress(condition, axis):
    attrs = {} if axis is None else {"axis": axis}
    check_node("Compress", {"x": rand(3, 2)}, {"condition": np.array(condition, bool)}, **attrs)


def test_compress_spec_example_and_a_run_time_condition():
    x = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    model = single_node_model("Compress", {"x": x}, {"condition": np.array([0, 1, 1], bool)}, {"axis": 0})
    got = cnncompile.run_reference(cnncompile.load_onnx(model), {"x": x})
    np.testing.assert_array_equal(got["out0"], [[3, 4], [5, 6]])
    model = single_node_model("Compress", {"x": x, "condition": np.array([0, 1, 1], bool)}, attrs={"axis": 0})
    with pytest.raises(UnsupportedError, match=r"input 1 \('condition'\) must be known at compile time"):
        cnncompile.load_onnx(model)


# -- SpaceToDepth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, blocksize", [((2, 2, 6, 6), 2), ((1, 3, 6, 9), 3), ((1, 1, 4, 6), 2)])
def test_space_to_depth(shape, blocksize):
    check_node("SpaceToDepth", {"x": rand(*shape)}, blocksize=blocksize)


def test_space_to_depth_undoes_depth_to_space_dcr():
    x = rand(2, 12, 3, 2)
    (tiles,) = DepthToSpace.run([x], DepthToSpace.make_attrs(blocksize=2, mode=DepthToSpaceMode.DCR))
    (back,) = SpaceToDepth.run([tiles], SpaceToDepth.make_attrs(blocksize=2))
    np.testing.assert_array_equal(back, x)
    with pytest.raises(ShapeError, match="height and width divide by 2"):
        infer(SpaceToDepth, TensorType((1, 1, 4, 5)), blocksize=2)


@pytest.mark.parametrize("axis", [0, 1])
def test_opset_10_scatter_imports_as_scatter_elements(axis):
    indices = np.stack([np.random.default_rng(s).permutation(3)[:2] for s in range(3)], axis=1 - axis)
    check_node("Scatter", {"data": rand(3, 3), "indices": indices.astype(np.int64),
                           "updates": rand(*indices.shape, seed=2)}, opset=10, axis=axis)
