"""Element-wise math against onnxruntime, and the corners worked by hand from the ONNX spec."""

import math

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import REGISTRY
from onnx_harness import check_node


def _normal(shape, seed=0, scale=2.0, dtype=np.float32):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype)


def _uniform(low, high, shape, seed=0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def _ints(low, high, shape, dtype, seed=0):
    return np.random.default_rng(seed).integers(low, high, shape).astype(dtype)


def _run(op, *arrays, **attrs):
    return REGISTRY[op].run([np.asarray(a) for a in arrays], REGISTRY[op].make_attrs(**attrs))[0]


UNIT = _uniform(-0.99, 0.99, (3, 4, 5))
UNARY_INPUTS = {
    "Exp": _normal((3, 4, 5)), "Log": _uniform(0.01, 9, (3, 4, 5)), "Sqrt": _uniform(0, 9, (3, 4, 5)),
    "Reciprocal": _uniform(0.5, 4, (3, 4, 5)), "Floor": _normal((3, 4, 5)), "Ceil": _normal((3, 4, 5)),
    "Round": _normal((3, 4, 5)), "Erf": _normal((3, 4, 5)), "Abs": _normal((3, 4, 5)), "Neg": _normal((3, 4, 5)),
    "Sign": _normal((3, 4, 5)), "Sin": _normal((3, 4, 5)), "Cos": _normal((3, 4, 5)), "Tan": _uniform(-1.5, 1.5, (60,)),
    "Asin": UNIT, "Acos": UNIT, "Atan": _normal((3, 4, 5)), "Sinh": _normal((3, 4, 5)), "Cosh": _normal((3, 4, 5)),
    "Asinh": _normal((3, 4, 5)), "Acosh": _uniform(1, 9, (3, 4, 5)), "Atanh": UNIT,
    "Mish": _normal((3, 4, 5), scale=6.0), "IsNaN": _normal((3, 4, 5)),
}


@pytest.mark.parametrize("op", sorted(UNARY_INPUTS))
def test_unary_matches_onnxruntime(op):
    check_node(op, {"x": UNARY_INPUTS[op]})


@pytest.mark.parametrize("op, dtype", [("Abs", np.int8), ("Abs", np.uint8), ("Neg", np.int32), ("Sign", np.int64),
                                       ("Abs", np.float64), ("Exp", np.float64)])
def test_unary_other_element_types_match_onnxruntime(op, dtype):
    x = _ints(-100, 100, (4, 6), dtype) if np.issubdtype(dtype, np.integer) and dtype != np.uint8 \
        else _ints(0, 250, (4, 6), dtype) if dtype == np.uint8 else _normal((4, 6), dtype=dtype)
    check_node(op, {"x": x})


@pytest.mark.parametrize("op, attrs", [("Celu", {}), ("Celu", {"alpha": 0.4}), ("ThresholdedRelu", {}),
                                       ("ThresholdedRelu", {"alpha": -0.5}), ("Shrink", {}),
                                       ("Shrink", {"bias": 0.3, "lambd": 1.2})])
def test_activation_matches_onnxruntime(op, attrs):
    check_node(op, {"x": _normal((2, 3, 4, 5), scale=3.0)}, **attrs)


def test_hand_worked_values():
    assert _run("Round", np.array([0.5, 1.5, 2.5, -0.5, -2.5, 2.6], np.float32)).tolist() == [0, 2, 2, 0, -2, 3]
    assert _run("Sign", np.array([-3.0, 0.0, 2.0], np.float32)).tolist() == [-1, 0, 1]
    assert _run("Erf", np.array([0.0, 1.0, -2.0])).tolist() == [0.0, math.erf(1.0), math.erf(-2.0)]
    assert _run("Shrink", np.array([-2.0, -0.4, 0.0, 0.4, 2.0], np.float32), bias=0.5, lambd=0.5).tolist() \
        == [-1.5, 0.0, 0.0, 0.0, 1.5]
    assert _run("ThresholdedRelu", np.array([0.5, 1.0, 1.5], np.float32)).tolist() == [0.0, 0.0, 1.5]
    assert _run("Celu", np.array([1.0, -1.0]), alpha=2.0).tolist() == [1.0, 2.0 * math.expm1(-0.5)]
    # domain errors have their IEEE answers
    assert np.isnan(_run("Log", np.array([-1.0]))).all() and _run("Log", np.array([0.0]))[0] == -np.inf
    assert _run("Reciprocal", np.array([0.0, -0.0])).tolist() == [np.inf, -np.inf]
    # Mish saturates without overflow: x for large x, -0 for very negative x
    assert _run("Mish", np.array([100.0, -100.0])).tolist() == [100.0, pytest.approx(0.0, abs=1e-40)]


@pytest.mark.parametrize("x, y", [
    (_uniform(0.1, 3, (2, 3, 4)), _normal((4,))),                       # broadcast float exponent
    (_normal((3, 4)), np.array(2.0, np.float32)),                       # scalar exponent
    (_normal((3, 4)), _ints(-3, 4, (4,), np.int64)),                    # float base, int exponent
    (_ints(1, 5, (3, 4), np.int64), _ints(0, 6, (3, 4), np.int64)),     # int ** int
    (_ints(1, 5, (3, 4), np.int32), _uniform(0, 3, (4,))),              # int base, float exponent
    (_normal((5,), dtype=np.float64), _ints(0, 4, (5,), np.int32)),
])
def test_pow_matches_onnxruntime(x, y):
    check_node("Pow", {"x": x, "y": y})


def test_pow_keeps_the_base_type_and_truncates_integer_results():
    out = _run("Pow", np.array([2, -2, 3, 4], np.int64), np.array([-1, -1, 2.5, 0.5], np.float32))
    assert out.dtype == np.int64 and out.tolist() == [0, 0, 15, 2]  # 0.5, -0.5, 15.58, 2.0, truncated
    t = REGISTRY["Pow"].infer([TensorType((3, 1), DType.INT32), TensorType((4,), DType.FLOAT32)],
                              REGISTRY["Pow"].make_attrs())
    assert t == [TensorType((3, 4), DType.INT32)]


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8])
def test_integer_mod_matches_onnxruntime(fmod, dtype):
    low = 0 if dtype == np.uint8 else -60
    a, b = _ints(low, 60, (3, 5), dtype), _ints(1, 7, (5,), dtype)
    if dtype != np.uint8:
        b = b * np.where(np.arange(5) % 2 == 0, 1, -1).astype(dtype)
    check_node("Mod", {"a": a, "b": b}, fmod=fmod)


def test_float_mod_matches_onnxruntime():
    check_node("Mod", {"a": _normal((3, 5), scale=9.0), "b": _normal((5,), seed=1)}, fmod=1)


def test_mod_signs_follow_the_spec():
    a, b = np.array([7, -7, 7, -7], np.int32), np.array([3, 3, -3, -3], np.int32)
    assert _run("Mod", a, b).tolist() == [1, 2, -2, -1]            # the divisor's sign
    assert _run("Mod", a, b, fmod=1).tolist() == [1, -1, 1, -1]    # the dividend's sign
    assert _run("Mod", np.array([5, -5], np.int32), np.array([0, 0], np.int32)).tolist() == [0, 0]


def test_float_mod_without_fmod_is_refused():
    with pytest.raises(ShapeError, match="Mod: the remainder of float32 tensors needs fmod=1"):
        REGISTRY["Mod"].infer([TensorType((3,)), TensorType((3,))], REGISTRY["Mod"].make_attrs())


@pytest.mark.parametrize("op", ["Max", "Min", "Mean"])
@pytest.mark.parametrize("shapes", [[(3, 4)], [(2, 3, 4), (4,)], [(2, 1, 4), (3, 1), (1,)]])
def test_variadic_matches_onnxruntime(op, shapes):
    check_node(op, {f"x{i}": _normal(s, seed=i) for i, s in enumerate(shapes)})


@pytest.mark.parametrize("op", ["Max", "Min"])
def test_variadic_integers_match_onnxruntime(op):
    check_node(op, {"a": _ints(-9, 9, (3, 4), np.int32), "b": _ints(-9, 9, (4,), np.int32, seed=1)})


def test_max_and_min_let_nan_win():
    a, b = np.array([np.nan, 1.0, 2.0]), np.array([1.0, np.nan, 3.0])
    assert np.isnan(_run("Max", a, b)[:2]).all() and _run("Max", a, b)[2] == 3.0
    assert np.isnan(_run("Min", a, b)[:2]).all() and _run("Min", a, b)[2] == 2.0


@pytest.mark.parametrize("attrs", [{}, {"detect_negative": 0}, {"detect_positive": 0},
                                   {"detect_negative": 0, "detect_positive": 0}])
def test_isinf_matches_onnxruntime(attrs):
    x = np.array([-np.inf, -1.0, 0.0, np.nan, 2.0, np.inf], np.float32)
    check_node("IsInf", {"x": x}, **attrs)


def test_isnan_and_isinf_flag_specials():
    x = np.array([-np.inf, -1.0, np.nan, np.inf])
    assert _run("IsNaN", x).tolist() == [False, False, True, False]
    assert _run("IsInf", x, detect_positive=0).tolist() == [True, False, False, False]


@pytest.mark.parametrize("op, dtype", [("Exp", DType.INT32), ("Sqrt", DType.BOOL), ("Neg", DType.UINT8),
                                       ("Celu", DType.FLOAT64), ("Mean", DType.INT64), ("IsNaN", DType.INT8)])
def test_element_types_outside_the_schema_are_refused(op, dtype):
    with pytest.raises(ShapeError, match=f"{op}: takes .* tensors, got {dtype.value}"):
        REGISTRY[op].infer([TensorType((2, 3), dtype)], REGISTRY[op].make_attrs())
