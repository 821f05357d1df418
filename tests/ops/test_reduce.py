"""Softmax, LogSoftmax, the ReduceX family, CumSum and LpNormalization against onnxruntime and by hand."""

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops import REGISTRY
from onnx_harness import check_node


def _x(shape=(2, 3, 4, 5), scale=1.0):
    return (np.random.default_rng(0).standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [None, -1, 0, 1, 2, -3])
@pytest.mark.parametrize("scale", [1.0, 1e3])  # 1e3: exp overflows unless shifted by the max
def test_softmax_matches_onnxruntime(op, axis, scale):
    attrs = {} if axis is None else {"axis": axis}
    check_node(op, {"x": _x(scale=scale)}, **attrs)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_rejects_axis_out_of_range(op):
    with pytest.raises(ShapeError, match=rf"{op}: axis 4 is out of range for rank 4"):
        REGISTRY[op].infer([TensorType((2, 3, 4, 5))], REGISTRY[op].make_attrs(axis=4))


@pytest.mark.parametrize("axes", [None, [1], [0, 2], [-1], [3, -3], [0, 1, 2, 3]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_mean_axes_as_input(axes, keepdims):
    constants = {} if axes is None else {"axes": np.array(axes, np.int64)}
    check_node("ReduceMean", {"x": _x()}, constants, opset=18, keepdims=keepdims)


@pytest.mark.parametrize("noop", [0, 1])
@pytest.mark.parametrize("empty", ["omitted", "empty tensor"])
def test_reduce_mean_empty_axes(noop, empty):
    constants = {} if empty == "omitted" else {"axes": np.zeros(0, np.int64)}
    check_node("ReduceMean", {"x": _x()}, constants, opset=18, noop_with_empty_axes=noop, keepdims=0)


@pytest.mark.parametrize("attrs", [{"axes": [2, 3]}, {"axes": [-1], "keepdims": 0}, {}])
def test_reduce_mean_opset13_axes_attribute(attrs):
    check_node("ReduceMean", {"x": _x()}, opset=13, **attrs)


@pytest.mark.parametrize(
    "axes, message", [((4,), r"axis 4 is out of range for rank 4"), ((1, -3), r"axes \[1, -3\] name an axis twice")]
)
def test_reduce_mean_rejects_bad_axes(axes, message):
    with pytest.raises(ShapeError, match=message):
        REGISTRY["ReduceMean"].infer([TensorType((2, 3, 4, 5))], REGISTRY["ReduceMean"].make_attrs(axes=axes))


def test_reduce_mean_flops():
    op, x = REGISTRY["ReduceMean"], TensorType((2, 3, 4, 5))
    attrs = op.make_attrs(axes=(2, 3))
    (y,) = op.infer([x], attrs)
    assert y.shape == (2, 3, 1, 1) and op.flops([x], [y], attrs) == 120 + 6


# -- the ReduceX family ------------------------------------------------------------------------

REDUCTIONS = ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
              "ReduceLogSumExp", "ReduceSumSquare", "ReduceMean"]
# ReduceSum took its axes as an input from opset 13, the others from 18.
AXES_INPUT_SINCE = {op: 13 if op == "ReduceSum" else 18 for op in REDUCTIONS}


def _positive(shape=(2, 3, 4, 5)):
    return np.random.default_rng(1).uniform(0.5, 1.5, shape).astype(np.float32)


def _data(op):
    """ReduceLogSum needs positive sums, ReduceProd factors near 1 to stay in range."""
    return _positive() if op in ("ReduceLogSum", "ReduceProd") else _x()


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("axes", [None, [1], [0, 2], [-1], [3, -3]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reductions_with_axes_as_input_match_onnxruntime(op, axes, keepdims):
    constants = {} if axes is None else {"axes": np.array(axes, np.int64)}
    check_node(op, {"x": _data(op)}, constants, opset=AXES_INPUT_SINCE[op], keepdims=keepdims)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("attrs", [{"axes": [2, 3]}, {"axes": [-1], "keepdims": 0}, {}])
def test_reductions_with_axes_as_attribute_match_onnxruntime(op, attrs):
    """Opset 11 (the converter upgrades it) and the last opset before axes became an input."""
    for opset in (11, AXES_INPUT_SINCE[op] - 1):
        check_node(op, {"x": _data(op)}, opset=opset, **attrs)


@pytest.mark.parametrize("op", REDUCTIONS)
def test_reductions_over_no_axes_with_noop_apply_only_their_element_wise_part(op):
    """noop_with_empty_axes: onnxruntime still takes |x|, x^2, exp and log (ReduceL1 is then |x|)."""
    x = _data(op)
    check_node(op, {"x": x}, {"axes": np.zeros(0, np.int64)}, opset=18, noop_with_empty_axes=1)


def test_reductions_by_hand():
    x = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
    attrs = {"axes": (1,), "keepdims": 0}
    expected = {"ReduceSum": [2, 3], "ReduceMax": [3, 5], "ReduceMin": [-2, -6], "ReduceProd": [-6, -120],
                "ReduceL1": [6, 15], "ReduceL2": [np.sqrt(14), np.sqrt(77)], "ReduceSumSquare": [14, 77],
                "ReduceMean": [2 / 3, 1],
                "ReduceLogSumExp": [np.log(np.e + np.e ** -2 + np.e ** 3), np.log(np.e ** 4 + np.e ** 5 + np.e ** -6)]}
    for op, want in expected.items():
        (got,) = REGISTRY[op].run([x], REGISTRY[op].make_attrs(**attrs))
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=op)


def test_integer_reductions_truncate_as_onnxruntime_does():
    """int32 [1, -2, 3], [4, 5, -6] over axis 1: L2 int(sqrt(14)) = 3, int(sqrt(77)) = 8; mean 2/3 -> 0, 1."""
    x = np.array([[1, -2, 3], [4, 5, -6]], np.int32)
    for op in ("ReduceL2", "ReduceMean", "ReduceLogSumExp", "ReduceProd", "ReduceSumSquare", "ReduceMin"):
        check_node(op, {"x": x}, {"axes": np.array([1], np.int64)}, opset=18)
    (got,) = REGISTRY["ReduceL2"].run([x], REGISTRY["ReduceL2"].make_attrs(axes=(1,)))
    assert got.dtype == np.int32 and got.ravel().tolist() == [3, 8]


def test_reduce_log_sum_exp_does_not_overflow():
    x = np.array([[1000.0, 1000.0], [-1000.0, -np.inf]])
    (got,) = REGISTRY["ReduceLogSumExp"].run([x], REGISTRY["ReduceLogSumExp"].make_attrs(axes=(1,), keepdims=0))
    np.testing.assert_allclose(got, [1000 + np.log(2), -1000.0], rtol=1e-12)


@pytest.mark.parametrize("op, empty", [("ReduceSum", 0.0), ("ReduceProd", 1.0), ("ReduceMax", -np.inf),
                                       ("ReduceMin", np.inf), ("ReduceL2", 0.0), ("ReduceLogSum", -np.inf),
                                       ("ReduceLogSumExp", -np.inf)])
def test_reductions_over_an_empty_set_give_their_identity(op, empty):
    """As ONNX's empty_set cases define them: a reduced axis of length 0."""
    (got,) = REGISTRY[op].run([np.zeros((2, 0, 4))], REGISTRY[op].make_attrs(axes=(1,)))
    assert got.shape == (2, 1, 4) and np.all(got == empty)


def test_reduce_max_of_booleans():
    x = np.array([[True, False], [False, False]])
    (got,) = REGISTRY["ReduceMax"].run([x], REGISTRY["ReduceMax"].make_attrs(axes=(1,), keepdims=0))
    assert got.dtype == np.bool_ and got.tolist() == [True, False]


@pytest.mark.parametrize("op", REDUCTIONS)
def test_reductions_name_themselves_in_shape_errors(op):
    with pytest.raises(ShapeError, match=rf"{op}: axis 4 is out of range for rank 4"):
        REGISTRY[op].infer([TensorType((2, 3, 4, 5))], REGISTRY[op].make_attrs(axes=(4,)))


# -- CumSum and LpNormalization -----------------------------------------------------------------


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("axis, dtype", [(0, np.int32), (-1, np.int64), (1, np.float32)])
def test_cumsum_matches_onnxruntime(exclusive, reverse, axis, dtype):
    x = (np.random.default_rng(2).standard_normal((3, 4, 5)) * 5).astype(dtype)
    check_node("CumSum", {"x": x}, {"axis": np.array(axis, np.int32)}, opset=14, exclusive=exclusive,
               reverse=reverse)


def test_cumsum_by_hand():
    """ONNX's examples: [1, 2, 3] -> [1, 3, 6]; exclusive [0, 1, 3]; reverse [6, 5, 3]; both [5, 3, 0]."""
    op, x = REGISTRY["CumSum"], np.array([1.0, 2.0, 3.0])
    for attrs, want in [({}, [1, 3, 6]), ({"exclusive": 1}, [0, 1, 3]), ({"reverse": 1}, [6, 5, 3]),
                        ({"exclusive": 1, "reverse": 1}, [5, 3, 0])]:
        (got,) = op.run([x], op.make_attrs(axis=(0,), **attrs))
        assert got.tolist() == want, attrs


def test_cumsum_rejects_an_axis_of_several_values():
    with pytest.raises(ShapeError, match="CumSum: axis must be one value"):
        REGISTRY["CumSum"].infer([TensorType((2, 3))], REGISTRY["CumSum"].make_attrs(axis=(0, 1)))


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_lp_normalization_matches_onnxruntime(p, axis):
    x = _x((3, 4, 5))
    x[0, 0] = 0.0  # a zero vector along the last axis: onnxruntime leaves it 0
    check_node("LpNormalization", {"x": x}, opset=22, p=p, axis=axis)


def test_lp_normalization_by_hand():
    op = REGISTRY["LpNormalization"]
    (l2,) = op.run([np.array([[3.0, 4.0]])], op.make_attrs())
    (l1,) = op.run([np.array([[3.0, -1.0]])], op.make_attrs(p=1))
    assert l2.tolist() == [[0.6, 0.8]] and l1.tolist() == [[0.75, -0.25]]


def test_lp_normalization_refuses_other_norms():
    with pytest.raises(ShapeError, match="only p=1 and p=2"):
        REGISTRY["LpNormalization"].infer([TensorType((2, 3))], REGISTRY["LpNormalization"].make_attrs(p=3))
