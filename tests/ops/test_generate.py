"""Generated tensors against onnxruntime and the ONNX spec's worked examples: Range, EyeLike,
OneHot, Trilu, Size, CastLike."""

import numpy as np
import pytest

import cnncompile
from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.generate import CastLike, EyeLike, OneHot, Range, Size, Trilu
from onnx_harness import check_node, single_node_model


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def scalar(value, dtype=np.int64) -> np.ndarray:
    return np.array(value, dtype=dtype)


def infer(op, *types, **attrs):
    return op.infer(list(types), op.make_attrs(**attrs))


def test_imported_generators_fold_to_constants():
    """Range's bounds and EyeLike's and Size's input types are all known at import."""
    model = single_node_model("Range", {}, {"start": scalar(3.0, np.float32), "limit": scalar(9.0, np.float32),
                                            "delta": scalar(3.0, np.float32)})
    graph = cnncompile.load_onnx(model)
    assert not graph.nodes
    np.testing.assert_array_equal(graph.constants[graph.outputs[0]], np.array([3, 6], np.float32))


# -- Range ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("start, limit, delta, dtype", [
    (3, 9, 3, np.int64), (10, 4, -3, np.int32), (1.0, 5.0, 2.0, np.float32), (-1.5, 4.0, 0.75, np.float32),
    (0.5, 0.25, 0.1, np.float64), (5, 5, 1, np.int64),
])
def test_range(start, limit, delta, dtype):
    inputs = {"start": scalar(start, dtype), "limit": scalar(limit, dtype), "delta": scalar(delta, dtype)}
    check_node("Range", {}, inputs, input_order=["start", "limit", "delta"])


def test_range_values_and_errors():
    (y,) = Range.run([], Range.make_attrs(start=scalar(10, np.int32), limit=scalar(4, np.int32),
                                          delta=scalar(-3, np.int32)))
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [10, 7])
    with pytest.raises(ShapeError, match="delta is 0"):
        infer(Range, start=scalar(0), limit=scalar(3), delta=scalar(0))
    with pytest.raises(ShapeError, match="one element type"):
        infer(Range, start=scalar(0), limit=scalar(3, np.int32), delta=scalar(1))


def test_a_run_time_limit_is_refused_naming_the_node():
    model = single_node_model("Range", {"limit": scalar(5)}, {"start": scalar(0), "delta": scalar(1)},
                              input_order=["start", "limit", "delta"])
    with pytest.raises(UnsupportedError, match=r"node 'range_0' \(Range\): input 1 \('limit'\) must be known at "
                                               "compile time"):
        cnncompile.load_onnx(model)


# -- EyeLike, OneHot, Trilu -------------------------------------------------------------------------


@pytest.mark.parametrize("shape, attrs", [
    ((4, 5), {}), ((4, 5), {"k": 1}), ((5, 3), {"k": -2}), ((3, 3), {"k": 4}), ((3, 4), {"dtype": 7}),
])
def test_eye_like(shape, attrs):
    check_node("EyeLike", {"x": rand(*shape)}, **attrs)


def test_eye_like_values_and_dtype():
    (y,) = EyeLike.run([np.zeros((2, 3), np.int32)], EyeLike.make_attrs(k=1, dtype=DType.FLOAT64))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[0, 1, 0], [0, 0, 1]])
    assert infer(EyeLike, TensorType((2, 3), DType.INT32))[0].dtype is DType.INT32
    with pytest.raises(ShapeError, match="2-D"):
        infer(EyeLike, TensorType((2, 3, 4)))


@pytest.mark.parametrize("indices, depth, axis", [
    (np.array([1, 9, 4, -3], np.int64), 10, -1),
    (np.array([[1, 9], [2, 4]], np.float32), 10, 1),
    (np.array([[0, 5], [-2, 7]], np.int64), 4, 0),  # 5 and 7 lie past depth 4: their rows are all off
    (np.array([[1, 2], [3, 0]], np.float32), 4, -2),
])
def test_one_hot(indices, depth, axis):
    depth = scalar(depth, np.int64 if indices.dtype == np.int64 else np.float32)
    check_node("OneHot", {"indices": indices}, {"depth": depth, "values": np.array([2, 5], np.float32)},
               input_order=["indices", "depth", "values"], axis=axis)


def test_one_hot_values():
    attrs = OneHot.make_attrs(depth=3, axis=0)
    (y,) = OneHot.run([np.array([0, -1, 3], np.int64), np.array([0, 7], np.int32)], attrs)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [[7, 0, 0], [0, 0, 0], [0, 7, 0]])
    with pytest.raises(ShapeError, match=r"must hold \[off, on\]"):
        infer(OneHot, TensorType((3,), DType.INT64), TensorType((3,)), depth=3)


@pytest.mark.parametrize("shape, upper, k", [
    ((4, 5), 1, None), ((4, 5), 1, 2), ((4, 5), 0, -1), ((2, 3, 3), 0, None), ((3, 1, 5), 1, -7), ((4, 5), 0, 6),
])
def test_trilu(shape, upper, k):
    constants = {} if k is None else {"k": scalar(k)}
    check_node("Trilu", {"x": rand(*shape)}, constants, upper=upper)


def test_trilu_values_and_a_run_time_k():
    x = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
    (y,) = Trilu.run([x, scalar(1)], Trilu.make_attrs())
    np.testing.assert_array_equal(y, [[0, 2, 3], [0, 0, 6], [0, 0, 0]])
    (y,) = Trilu.run([x], Trilu.make_attrs(upper=0))
    np.testing.assert_array_equal(y, [[1, 0, 0], [4, 5, 0], [7, 8, 9]])
    model = single_node_model("Trilu", {"x": x, "k": scalar(-1)})
    graph = cnncompile.load_onnx(model)
    assert [v.name for v in graph.inputs] == ["x", "k"]
    got = cnncompile.run_reference(graph, {"x": x, "k": scalar(-1)})
    np.testing.assert_array_equal(got["out0"], [[1, 2, 3], [4, 5, 6], [0, 8, 9]])


# -- Size and CastLike ----------------------------------------------------------------------------------


def test_size():
    check_node("Size", {"x": rand(3, 4, 5)})
    (y,) = Size.run([np.zeros((2, 0, 3))], Size.make_attrs())
    assert y.dtype == np.int64 and y.shape == () and y == 0


@pytest.mark.parametrize("x, like, tol", [
    (rand(3, 4) * 5, np.zeros(1, np.int32), 1e-5),
    # the reference computes floats in float32 or float64 whatever a value's declared type, and CastLike
    # sees only target_type's array, so it does not round to float16 as Cast(to=float16) does
    (rand(3, 4), np.zeros(2, np.float16), 2**-11),
    (np.array([-2, 0, 3], np.int64), np.zeros((), np.float64), 1e-5),
    (rand(5), np.zeros(1, bool), 1e-5),
    (np.array([200, 3], np.int32), np.zeros(1, np.uint8), 1e-5),
])
def test_cast_like(x, like, tol):
    check_node("CastLike", {"x": x}, {"like": like}, input_order=["x", "like"], tol=tol)


def test_cast_like_takes_only_the_type():
    out = infer(CastLike, TensorType((2, 3)), TensorType((7,), DType.INT8))
    assert out == [TensorType((2, 3), DType.INT8)]
    (y,) = CastLike.run([np.array([-1.7, 2.9], np.float32), np.zeros(0, np.int64)], CastLike.make_attrs())
    np.testing.assert_array_equal(y, [-1, 2])
