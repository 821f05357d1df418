"""Cast, CastLike, QuantizeLinear and DequantizeLinear to and from the narrow types (float8, float4,
int4, int2) against onnx's ReferenceEvaluator, to the bit, with and without `saturate`; float8e8m0's
rounding against the spec's table and definitions (onnx's reference misrounds there, see below)."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import cnncompile
from cnncompile.ir.types import NARROW_FLOATS, DType
from onnx_harness import single_node_model

FLOAT8 = [DType.FLOAT8E4M3FN, DType.FLOAT8E4M3FNUZ, DType.FLOAT8E5M2, DType.FLOAT8E5M2FNUZ]
NARROW_INTS = [DType.INT4, DType.UINT4, DType.INT2, DType.UINT2]
# Zeros of both signs, NaNs of both signs, infinities, values past every float8's largest finite one
# (448, 240, 57344), ties between neighbours (1.0625 is halfway between e4m3's 1 and 1.125; 1.125 and
# 1.375 are e5m2 ties), subnormals and values rounding into them, and a spread of ordinary ones.
SPECIALS = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 448, 464, 480, 500, -500, 240, 247, 256,
                     57344, 61440, 65504, -65504, 1.0625, 1.1875, 1.125, 1.375, -1.0625, 2 ** -9, 2 ** -10,
                     3 * 2 ** -11, 2 ** -17, 1.5e-5, 0.1, -3.3, 7.7, 100.0], np.float32)


def _bits(array: np.ndarray) -> np.ndarray:
    """The stored bytes, so NaN, -0 and the sign of NaN compare exactly."""
    array = np.asarray(array)
    return array.view(np.uint8) if array.dtype.itemsize == 1 else array.view(f"u{array.dtype.itemsize}")


def _code(dtype: DType) -> int:
    return helper.np_dtype_to_tensor_dtype(dtype.numpy)


def _same_as_onnx(op: str, inputs: dict, constants: dict | None = None, opset: int = 21, **attrs) -> np.ndarray:
    """Our reference, in float64 and float32 modes, equals onnx's ReferenceEvaluator bit for bit."""
    model = single_node_model(op, inputs, constants, attrs, opset=opset)
    (want,) = ReferenceEvaluator(model).run(None, dict(inputs))
    graph = cnncompile.load_onnx(model)
    cnncompile.verify(graph)
    for mode in (DType.FLOAT64, DType.FLOAT32):
        got = cnncompile.run_reference(graph, inputs, dtype=mode)["out0"]
        if DType.of(want.dtype).is_float:  # computed in the mode's type: exact, so narrowing it is too
            got = got.astype(want.dtype)
        assert got.dtype == want.dtype, f"{op} {attrs} ({mode.value}): {got.dtype} != {want.dtype}"
        np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"{op} {attrs} ({mode.value})")
    return want


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("to", FLOAT8, ids=lambda d: d.name)
@pytest.mark.parametrize("source", [np.float32, np.float16])
def test_cast_to_float8_saturates_or_overflows_as_onnx(to, saturate, source):
    x = SPECIALS.astype(source)
    y = _same_as_onnx("Cast", {"x": x}, to=_code(to), saturate=saturate)
    largest = float(ml_dtypes.finfo(to.numpy).max)
    inf = y[4].astype(np.float32)
    assert inf == largest if saturate else (np.isinf(inf) if to is DType.FLOAT8E5M2 else np.isnan(inf))


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("to", FLOAT8, ids=lambda d: d.name)
def test_cast_like_to_float8_matches_onnx(to, saturate):
    like = np.zeros(1, to.numpy)
    _same_as_onnx("CastLike", {"x": SPECIALS, "like": like}, saturate=saturate)


@pytest.mark.parametrize("to", [DType.FLOAT4E2M1, *NARROW_INTS], ids=lambda d: d.name)
def test_cast_to_float4_and_narrow_integers_matches_onnx(to):
    # floats past float4's range saturate; past an integer's, the spec leaves the result undefined, and
    # onnx's reference (0) and its conformance data (the low bits, which cnncompile keeps) disagree
    x = np.array([-9.5, -8, -2.5, -1.5, -0.5, 0, 0.25, 0.75, 1.5, 2.5, 3, 5, 6, 7, 8, 9.9, 15, 16, 100], np.float32)
    if to in NARROW_INTS:
        info = ml_dtypes.iinfo(to.numpy)
        x = x[(np.trunc(x) >= info.min) & (np.trunc(x) <= info.max)]
    _same_as_onnx("Cast", {"x": x}, to=_code(to))
    _same_as_onnx("Cast", {"x": np.arange(-20, 20, dtype=np.int32)}, to=_code(to))


@pytest.mark.parametrize("source", [*FLOAT8, DType.FLOAT4E2M1, *NARROW_INTS], ids=lambda d: d.name)
@pytest.mark.parametrize("to", [TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT8, TensorProto.INT32,
                                TensorProto.FLOAT8E4M3FN, TensorProto.BOOL])
def test_cast_from_narrow_types_matches_onnx(source, to):
    every = np.arange(256, dtype=np.uint8) if source.bits == 8 else np.arange(1 << source.bits, dtype=np.uint8)
    x = every.view(source.numpy) if source.bits == 8 else np.arange(-8, 16).astype(source.numpy)
    if source in NARROW_FLOATS and to in (TensorProto.INT8, TensorProto.INT32, TensorProto.BOOL):
        wide = x.astype(np.float32)  # NaN, inf and floats past the range to an integer are undefined
        x = x[np.isfinite(wide) & (np.abs(wide) < (128 if to == TensorProto.INT8 else 2 ** 31))]
    _same_as_onnx("Cast", {"x": x}, to=to)


# -- float8e8m0 ---------------------------------------------------------------------------------


def _e8m0(x, round_mode: str = "up", saturate: int = 1) -> np.ndarray:
    model = single_node_model("Cast", {"x": np.asarray(x, np.float32)}, None,
                              {"to": TensorProto.FLOAT8E8M0, "round_mode": round_mode, "saturate": saturate}, opset=24)
    return cnncompile.run_reference(cnncompile.load_onnx(model), {"x": np.asarray(x, np.float32)})["out0"]


def test_e8m0_special_values_follow_the_spec_table():
    smallest, largest = 2.0 ** -127, 2.0 ** 127
    x = [0.0, np.nan, np.inf, 3e38, 1e-39]  # 3e38 > 2^127 = 1.7e38; 1e-39 < 2^-127
    np.testing.assert_array_equal(_e8m0(x, "up", 1).astype(np.float64), [smallest, np.nan, largest, largest, smallest])
    assert np.isnan(_e8m0(x, "nearest", 0).astype(np.float64)).all()


@pytest.mark.parametrize("mode, want", [
    ("up", [0.125, 1, 2, 2, 2, 4, 8, 8, 8]),  # up: away from zero
    ("down", [0.0625, 1, 1, 1, 1, 2, 4, 4, 4]),  # down: toward zero
    ("nearest", [0.125, 1, 1, 2, 2, 4, 4, 8, 8]),  # nearest, a tie (1.5, 3, 6) going up
])
def test_e8m0_rounds_to_a_power_of_two_by_round_mode(mode, want):
    # onnx's reference tests only bits 22 and 0-19 of the mantissa for "up" (mask 0x4FFFFF), so it
    # rounds 1.25 and 5 down; the spec's "round to nearest value away from zero" gives 2 and 8.
    x = [0.124, 1.0, 1.25, 1.5, 1.75, 3.0, 5.0, 6.0, 7.0]
    np.testing.assert_array_equal(_e8m0(x, mode).astype(np.float64), want)


def test_e8m0_agrees_with_onnx_where_its_mask_sees_every_bit():
    x = np.array([2.0 ** -30, 0.124, 0.25, 1.1, 1.5, 2.0, 3.0, 1000.0, 1e30], np.float32)
    for mode in ("up", "down", "nearest"):
        _same_as_onnx("Cast", {"x": x}, opset=24, to=TensorProto.FLOAT8E8M0, round_mode=mode)


# -- QuantizeLinear and DequantizeLinear ----------------------------------------------------------


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("dtype", [*FLOAT8, DType.FLOAT4E2M1], ids=lambda d: d.name)
def test_quantize_to_float8_and_float4_matches_onnx(dtype, saturate):
    x = SPECIALS[np.isfinite(SPECIALS)]
    consts = {"s": np.array(0.5, np.float32), "z": np.zeros((), dtype.numpy)}
    attrs = {"saturate": saturate} if dtype in FLOAT8 else {}
    _same_as_onnx("QuantizeLinear", {"x": x}, consts, opset=23 if dtype is DType.FLOAT4E2M1 else 21, **attrs)


@pytest.mark.parametrize("dtype", NARROW_INTS, ids=lambda d: d.name)
def test_quantize_and_dequantize_narrow_integers_per_axis_match_onnx(dtype):
    x = np.random.default_rng(3).standard_normal((3, 8)).astype(np.float32) * 4
    info = ml_dtypes.iinfo(dtype.numpy)
    zero = np.array([info.min, 0, info.max], dtype.numpy)
    scale = np.array([0.5, 1.0, 0.25], np.float32)
    opset = 25 if dtype.bits == 2 else 21
    q = _same_as_onnx("QuantizeLinear", {"x": x}, {"s": scale, "z": zero}, opset=opset, axis=0)
    _same_as_onnx("DequantizeLinear", {"q": q}, {"s": scale, "z": zero}, opset=opset, axis=0)


@pytest.mark.parametrize("dtype", [*FLOAT8, DType.FLOAT4E2M1], ids=lambda d: d.name)
def test_dequantize_every_float8_and_float4_matches_onnx(dtype):
    every = np.arange(256 if dtype.bits == 8 else 16, dtype=np.uint8).view(dtype.numpy)
    opset = 23 if dtype is DType.FLOAT4E2M1 else 21
    _same_as_onnx("DequantizeLinear", {"q": every}, {"s": np.array(0.75, np.float32)}, opset=opset)
