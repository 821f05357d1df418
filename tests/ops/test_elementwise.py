"""Element-wise ops against onnxruntime: activations, broadcasting arithmetic, Clip, Cast, Dropout."""

import math

import numpy as np
import pytest
from onnx import TensorProto

import cnncompile
from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import REGISTRY
from cnncompile.ops.elementwise import erfc
from onnx_harness import check_node, single_node_model


def _normal(shape, seed=0, scale=3.0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, np.float32)


# Magnitudes where a naive exp overflows (float32 exp overflows above ~88) or saturates.
LARGE = np.array([-1e4, -500, -100, -89, -50, -20, -1e-3, 0, 1e-3, 20, 50, 89, 100, 500, 1e4], np.float32)


@pytest.mark.parametrize(
    "op, attrs",
    [
        ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.3}),
        ("Elu", {}), ("Elu", {"alpha": 0.5}),
        ("Selu", {}), ("Selu", {"alpha": 2.0, "gamma": 0.5}),
        ("Sigmoid", {}), ("Tanh", {}),
        ("HardSigmoid", {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
        ("HardSwish", {}),
        ("Gelu", {}), ("Gelu", {"approximate": "none"}), ("Gelu", {"approximate": "tanh"}),
        ("Softplus", {}), ("Softsign", {}), ("Identity", {}),
    ],
)
@pytest.mark.parametrize("inputs", ["normal", "large"])
def test_activation_matches_onnxruntime(op, attrs, inputs):
    x = _normal((2, 3, 5, 7)) if inputs == "normal" else LARGE
    check_node(op, {"x": x}, **attrs)


@pytest.mark.parametrize("slope_shape", [(3, 1, 1), (5,), (1,), (4, 5), (2, 3, 4, 5)])
def test_prelu_broadcasts_slope(slope_shape):
    check_node("PRelu", {"x": _normal((2, 3, 4, 5))}, {"slope": _normal(slope_shape, seed=1, scale=0.5)})


@pytest.mark.parametrize("slope_shape", [(3,), (2, 2, 3, 4, 5), (2, 3, 4, 1, 1)])
def test_prelu_rejects_slope_that_does_not_fit(slope_shape):
    with pytest.raises(ShapeError, match=r"PRelu.*\[C, 1, 1\]"):
        prelu = REGISTRY["PRelu"]
        prelu.infer([TensorType((2, 3, 4, 5)), TensorType(slope_shape)], prelu.make_attrs())


@pytest.mark.parametrize(
    "bounds, order",
    [
        ({"lo": -0.5, "hi": 0.7}, ["x", "lo", "hi"]),
        ({"lo": -0.5}, ["x", "lo"]),
        ({"hi": 0.7}, ["x", "", "hi"]),
        ({}, ["x"]),
        ({"lo": 1.0, "hi": -1.0}, ["x", "lo", "hi"]),  # min > max: every element becomes max
    ],
)
def test_clip_bounds_as_inputs(bounds, order):
    constants = {name: np.array(v, np.float32) for name, v in bounds.items()}
    check_node("Clip", {"x": _normal((3, 4, 5), scale=1.0)}, constants, input_order=order)


def test_clip_integers():
    x = np.random.default_rng(0).integers(-50, 50, (4, 6)).astype(np.int32)
    check_node("Clip", {"x": x}, {"lo": np.array(-7, np.int32), "hi": np.array(9, np.int32)})


@pytest.mark.parametrize("attrs", [{"min": -0.5, "max": 0.7}, {"min": -0.2}, {}])
def test_clip_opset6_bounds_as_attributes(attrs):
    check_node("Clip", {"x": _normal((3, 4, 5), scale=1.0)}, opset=6, **attrs)


BROADCAST_SHAPES = [
    ((3, 4), (3, 4)), ((2, 3, 4, 5), (4, 5)), ((2, 1, 4, 1), (3, 1, 5)), ((), (3, 4)), ((3, 1), ()),
]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("a_shape, b_shape", BROADCAST_SHAPES)
def test_binary_broadcasts(op, a_shape, b_shape):
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 2.0, b_shape) * rng.choice([-1, 1], b_shape)  # away from zero, for Div
    check_node(op, {"a": _normal(a_shape, seed=1), "b": np.asarray(b, np.float32)})


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_binary_integers(op, dtype):
    rng = np.random.default_rng(0)
    a = rng.integers(-100, 100, (4, 5)).astype(dtype)
    b = (rng.integers(1, 8, (5,)) * rng.choice([-1, 1], (5,))).astype(dtype)
    check_node(op, {"a": a, "b": b})


def test_integer_division_truncates_toward_zero():
    a = np.array([-7, 7, -7, 7, -6, 6], np.int64)
    b = np.array([2, 2, -2, -2, 3, -3], np.int64)
    got = check_node("Div", {"a": a, "b": b})
    assert got[0].tolist() == [-3, 3, 3, -3, -2, -2]  # ORT truncates; NumPy's // gives -4 for -7 / 2


@pytest.mark.parametrize("shapes", [[(3, 4)], [(3, 4), (3, 4)], [(2, 1, 4), (3, 1), (4,)]])
def test_sum_is_variadic_and_broadcasts(shapes):
    check_node("Sum", {f"x{i}": _normal(s, seed=i) for i, s in enumerate(shapes)})


@pytest.mark.parametrize(
    "op, a_shape, b_shape", [("Sub", (2, 3), (4,)), ("Sum", (2, 3), (3, 2)), ("Mul", (5,), (2, 4))]
)
def test_binary_rejects_shapes_that_do_not_broadcast(op, a_shape, b_shape):
    with pytest.raises(ShapeError, match=r"\[.*\].*do not broadcast"):
        REGISTRY[op].infer([TensorType(a_shape), TensorType(b_shape)], REGISTRY[op].make_attrs())


@pytest.mark.parametrize(
    "to, low, high",
    [
        (TensorProto.FLOAT, -100, 100), (TensorProto.DOUBLE, -100, 100), (TensorProto.FLOAT16, -100, 100),
        (TensorProto.INT32, -100, 100), (TensorProto.INT64, -100, 100), (TensorProto.INT8, -100, 100),
        (TensorProto.UINT8, 0, 250), (TensorProto.BOOL, -2, 2),
    ],
)
def test_cast_from_float(to, low, high):
    x = np.random.default_rng(0).uniform(low, high, (4, 6)).astype(np.float32)
    x[0, :3] = 0  # Cast to bool maps exactly zero to False
    check_node("Cast", {"x": x}, to=to)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.uint8])
def test_cast_to_float(dtype):
    x = np.random.default_rng(0).integers(0, 200, (4, 6)).astype(dtype)
    check_node("Cast", {"x": x}, to=TensorProto.FLOAT)


def test_cast_accepts_saturate_and_types_its_output():
    model = single_node_model("Cast", {"x": _normal((2, 3))}, attrs={"to": TensorProto.INT32, "saturate": 0})
    (node,) = cnncompile.load_onnx(model).nodes
    assert node.attrs.to is DType.INT32 and node.attrs.saturate == 0
    assert node.outputs[0].type == TensorType((2, 3), DType.INT32)


@pytest.mark.parametrize(
    "constants, order, opset, attrs",
    [
        ({}, ["x"], 21, {}),
        ({"ratio": np.array(0.3, np.float32)}, ["x", "ratio"], 21, {"seed": 7}),
        ({"ratio": np.array(0.3, np.float32), "train": np.array(False)}, ["x", "ratio", "train"], 21, {}),
        ({"train": np.array(False)}, ["x", "", "train"], 13, {}),
    ],
)
def test_dropout_is_identity_with_true_mask(constants, order, opset, attrs):
    output, mask = check_node("Dropout", {"x": _normal((2, 3, 4))}, constants, input_order=order, n_outputs=2,
                              opset=opset, **attrs)
    assert mask.dtype == bool and mask.all()


def test_dropout_opset10_ratio_attribute():
    # Only the output: ORT's opset-10 kernel returns an all-False mask, where the spec and
    # onnx.reference give all True (as ORT does from opset 12).
    check_node("Dropout", {"x": _normal((2, 3, 4))}, opset=10, ratio=0.2)


def test_dropout_in_training_mode_is_unsupported():
    model = single_node_model("Dropout", {"x": _normal((2, 3))}, {"ratio": np.array(0.5, np.float32),
                              "train": np.array(True)}, input_order=["x", "ratio", "train"])
    with pytest.raises(UnsupportedError, match="training_mode=1.*inference mode"):
        cnncompile.load_onnx(model)


def test_erfc_matches_math_on_a_dense_grid():
    x = np.concatenate([np.linspace(-6, 26, 100_001), np.geomspace(1e-300, 1, 1_000), [0.0, 2.0, -2.0]])
    want = np.array([math.erfc(v) for v in x])
    got = erfc(x)
    assert np.max(np.abs(got - want) / want) <= 1e-13
    erf = np.array([math.erf(v) for v in x])
    assert np.max(np.abs((1 - got) - erf)) <= 1e-15  # erf itself, to double rounding


def test_flop_counts():
    t = TensorType((2, 3, 4))
    assert REGISTRY["Sigmoid"].flops([t], [t], REGISTRY["Sigmoid"].make_attrs()) == 3 * 24
    assert REGISTRY["Sum"].flops([t, t, t], [t], REGISTRY["Sum"].make_attrs()) == 2 * 24
    assert REGISTRY["Identity"].flops([t], [t], REGISTRY["Identity"].make_attrs()) == 0
