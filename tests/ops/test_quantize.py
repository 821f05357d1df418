"""QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear against onnxruntime (onnx's reference
evaluator where onnxruntime lacks a form), to the bit, and the corners worked by hand from the spec."""

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import cnncompile
from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import REGISTRY
from onnx_harness import run_ort, single_node_model

RNG = np.random.default_rng(0)


def _x(*shape, scale=3.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _scales(*shape, low=0.01, high=0.05):
    return RNG.uniform(low, high, shape).astype(np.float32)


def _ints(*shape, dtype):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, int(info.max) + 1, shape).astype(dtype)


def check(op, inputs, constants=None, oracle="ort", n_outputs=1, input_order=None, **attrs):
    """Our reference (float64 and float32 modes) equals the oracle: integers exactly, floats within 1e-6."""
    model = single_node_model(op, inputs, constants, attrs, input_order, n_outputs=n_outputs)
    want = run_ort(model, inputs) if oracle == "ort" else ReferenceEvaluator(model).run(None, dict(inputs))
    graph = cnncompile.load_onnx(model)
    cnncompile.verify(graph)
    for dtype in (DType.FLOAT64, DType.FLOAT32):
        got = cnncompile.run_reference(graph, inputs, dtype=dtype)
        for i, expected in enumerate(want):
            out = got[f"out{i}"]
            assert out.shape == expected.shape, f"{op} out{i}: {out.shape} != {expected.shape}"
            if np.issubdtype(expected.dtype, np.integer):
                assert out.dtype == expected.dtype, f"{op} out{i}: {out.dtype} != {expected.dtype}"
                np.testing.assert_array_equal(out, expected, err_msg=f"{op} out{i} ({dtype.value})")
            else:
                np.testing.assert_allclose(out, expected, rtol=1e-6, atol=0, err_msg=f"{op} out{i} ({dtype.value})")
    return want


def _run(op, *arrays, **attrs):
    return REGISTRY[op].run([np.asarray(a) for a in arrays], REGISTRY[op].make_attrs(**attrs))


# -- QuantizeLinear ------------------------------------------------------------------------------


def test_quantize_per_tensor_uint8():
    check("QuantizeLinear", {"x": _x(2, 3, 4)}, {"s": np.array(0.0237, np.float32), "z": np.array(128, np.uint8)})


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_quantize_per_axis_int8(axis):
    x = _x(3, 4, 5)
    n = x.shape[axis]
    check("QuantizeLinear", {"x": x}, {"s": _scales(n), "z": _ints(n, dtype=np.int8) // 8}, axis=axis)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16])
def test_quantize_16_bit_saturates(dtype):
    """Scales small enough that about a third of the values leave the 16-bit range."""
    x = _x(4, 6, scale=500.0)
    zero = np.array(100 if dtype == np.int16 else 30000, dtype)
    check("QuantizeLinear", {"x": x}, {"s": np.array(0.0137, np.float32), "z": zero})


def test_quantize_saturates_int8_and_uint8():
    x = np.array([-1000.0, -129.0, -128.6, 126.6, 127.5, 1000.0], np.float32)
    for zero in (np.array(0, np.int8), np.array(0, np.uint8)):
        check("QuantizeLinear", {"x": x}, {"s": np.array(1.0, np.float32), "z": zero})
    (y,) = _run("QuantizeLinear", x, np.float32(1.0), np.int8(0))
    np.testing.assert_array_equal(y, [-128, -128, -128, 127, 127, 127])


def test_quantize_rounds_halves_to_even():
    """Worked by hand: x / 0.5 = -2.5, -1.5, -0.5, 0.5, 1.5, 2.5; rint gives the even neighbour; + 10."""
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], np.float32) * 0.5
    (y,) = _run("QuantizeLinear", x, np.float32(0.5), np.uint8(10))
    np.testing.assert_array_equal(y, [8, 8, 10, 10, 12, 12])
    assert y.dtype == np.uint8
    check("QuantizeLinear", {"x": x}, {"s": np.array(0.5, np.float32), "z": np.array(10, np.uint8)})


def test_quantize_without_zero_point_is_uint8_or_output_dtype():
    x = _x(3, 5)
    check("QuantizeLinear", {"x": x}, {"s": np.array(0.02, np.float32)})
    check("QuantizeLinear", {"x": x}, {"s": np.array(0.02, np.float32)}, output_dtype=3)  # INT8


@pytest.mark.parametrize("axis, block_size", [(1, 3), (0, 2), (-1, 4)])
def test_quantize_blocked_with_a_short_last_block(axis, block_size):
    """x [5, 7]: along axis 1 blocks of 3 (3, 3, 1), along 0 of 2 (2, 2, 1); onnxruntime runs blocked
    quantization only for 4-bit types, so onnx's reference is the oracle."""
    x = _x(5, 7)
    shape = list(x.shape)
    shape[axis] = -(-shape[axis] // block_size)
    check("QuantizeLinear", {"x": x}, {"s": _scales(*shape), "z": _ints(*shape, dtype=np.int8) // 16},
          oracle="onnx", axis=axis, block_size=block_size)


# -- DequantizeLinear ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32])
def test_dequantize_per_tensor(dtype):
    zero = {"z": _ints(dtype=dtype)} if dtype != np.int32 else {}
    check("DequantizeLinear", {"x": _ints(3, 4, dtype=dtype)}, {"s": np.array(0.0173, np.float32), **zero})


def test_dequantize_per_axis():
    check("DequantizeLinear", {"x": _ints(2, 3, 4, dtype=np.uint8)}, {"s": _scales(3), "z": _ints(3, dtype=np.uint8)})


def test_dequantize_blocked():
    check("DequantizeLinear", {"x": _ints(6, 5, dtype=np.int8)},
          {"s": _scales(2, 5), "z": _ints(2, 5, dtype=np.int8)}, oracle="onnx", axis=0, block_size=4)


def test_dequantize_by_hand():
    """(x - zero point) * scale: (0 - 255) * 0.5, (255 - 255) * 0.5, (10 - 255) * 0.5."""
    (y,) = _run("DequantizeLinear", np.array([0, 255, 10], np.uint8), np.float32(0.5), np.uint8(255))
    np.testing.assert_array_equal(y, np.array([-127.5, 0.0, -122.5], np.float32))
    assert y.dtype == np.float32


# -- DynamicQuantizeLinear -----------------------------------------------------------------------


@pytest.mark.parametrize("x", [_x(3, 17), RNG.uniform(0.5, 9.0, (4, 6)).astype(np.float32),
                               -RNG.uniform(0.5, 9.0, (4, 6)).astype(np.float32)],
                         ids=["mixed", "positive", "negative"])
def test_dynamic_quantize_matches_onnxruntime(x):
    check("DynamicQuantizeLinear", {"x": x}, n_outputs=3)


def test_dynamic_quantize_by_hand():
    """x in [-1, 2]: scale = 3 / 255, zero point = rint(1 / scale) = rint(85) = 85; 2 -> 255, -1 -> 0."""
    y, scale, zero = _run("DynamicQuantizeLinear", np.array([-1.0, 0.0, 2.0], np.float32))
    assert scale == np.float32(3) / np.float32(255) and scale.dtype == np.float32
    assert zero == 85 and zero.dtype == np.uint8
    np.testing.assert_array_equal(y, [0, 85, 255])


# -- shape rules ---------------------------------------------------------------------------------


def _infer(op, *types, **attrs):
    return REGISTRY[op].infer(list(types), REGISTRY[op].make_attrs(**attrs))


F32, U8 = DType.FLOAT32, DType.UINT8


@pytest.mark.parametrize(
    "op, types, attrs, message",
    [
        ("QuantizeLinear", (TensorType((3, 4)), TensorType((5,))), {},
         r"y_scale float32\[5\] must be a scalar \(per tensor\) or 1-D with the 4 elements of x"),
        ("QuantizeLinear", (TensorType((3, 4)), TensorType((3, 1))), {"block_size": 3},
         r"blocked y_scale float32\[3x1\] must have shape \[3, 2\]"),
        ("QuantizeLinear", (TensorType((3, 4)), TensorType(()), TensorType((), DType.INT32)), {},
         r"quantizes to int8, uint8, int16, uint16, float8_e4m3fn, .*, uint2, got int32"),
        ("QuantizeLinear", (TensorType((3, 4)), TensorType(()), TensorType((), U8)), {"output_dtype": DType.INT8},
         r"output_dtype int8 disagrees with the zero point's uint8"),
        ("QuantizeLinear", (TensorType((3, 4)), TensorType((4,)), TensorType((), U8)), {},
         r"y_zero_point uint8\[scalar\] must have y_scale float32\[4\]'s shape"),
        ("DequantizeLinear", (TensorType((3, 4)), TensorType(())), {},
         r"takes int8, uint8, int16, uint16, int32, float8_e4m3fn, .*, uint2 x"),
        ("DequantizeLinear", (TensorType((3, 4), U8), TensorType(()), TensorType((), DType.INT8)), {},
         r"x_zero_point int8\[scalar\] must be of x uint8\[3x4\]'s type"),
        ("DynamicQuantizeLinear", (TensorType((3,), DType.FLOAT16),), {}, r"takes float32 x, got float16"),
    ],
)
def test_shape_rules_reject_with_a_clear_message(op, types, attrs, message):
    with pytest.raises(ShapeError, match=message):
        _infer(op, *types, **attrs)


def test_shape_rules_give_the_quantized_and_float_types():
    assert _infer("QuantizeLinear", TensorType((2, 3)), TensorType(()), TensorType((), DType.INT16)) == \
        [TensorType((2, 3), DType.INT16)]
    assert _infer("DequantizeLinear", TensorType((2, 3), U8), TensorType((), DType.FLOAT16)) == \
        [TensorType((2, 3), DType.FLOAT16)]
    assert _infer("DynamicQuantizeLinear", TensorType((2, 3))) == \
        [TensorType((2, 3), U8), TensorType((), F32), TensorType((), U8)]
