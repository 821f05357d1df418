"""Normalizations against onnxruntime: BatchNormalization, LayerNormalization, InstanceNormalization, LRN."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.norm import LRN, BatchNormalization, InstanceNormalization, LayerNormalization
from onnx_harness import OPSET, check_node


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _bn_stats(rng, shape):
    return {"scale": _f32(rng, *shape), "b": _f32(rng, *shape), "mean": _f32(rng, *shape),
            "var": (rng.random(shape) + 0.1).astype(np.float32)}


@pytest.mark.parametrize("x_shape", [(4, 3), (2, 3, 7), (2, 3, 5, 6), (1, 4, 3, 4, 5)])
@pytest.mark.parametrize("attrs", [{}, {"epsilon": 1e-2, "momentum": 0.5}])
def test_batch_norm_matches_onnxruntime(x_shape, attrs):
    rng = np.random.default_rng(0)
    check_node("BatchNormalization", {"x": _f32(rng, *x_shape)}, _bn_stats(rng, (x_shape[1],)), **attrs)


@pytest.mark.parametrize("spatial", [0, 1])
def test_batch_norm_opset7_spatial(spatial):
    rng = np.random.default_rng(1)
    x = _f32(rng, 2, 3, 4, 5)
    stats = _bn_stats(rng, (3,) if spatial else (3, 4, 5))
    check_node("BatchNormalization", {"x": x}, stats, opset=7, spatial=spatial)


def test_batch_norm_training_mode_is_unsupported():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4, 4])
    stats = [numpy_helper.from_array(np.ones(3, np.float32), n) for n in ("s", "b", "m", "v")]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], training_mode=1)
    graph = helper.make_graph([node], "bn", [x], [y], stats)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    with pytest.raises(UnsupportedError, match="training_mode=1"):
        cnncompile.load_onnx(model)


@pytest.mark.parametrize(
    "x_shape, axis, scale_shape, bias_shape",
    [
        ((2, 3, 4, 5), -1, (5,), (5,)),
        ((2, 3, 4, 5), 1, (3, 4, 5), (3, 4, 5)),
        ((2, 3, 4, 5), -2, (1, 5), (4, 1)),
        ((2, 3, 4, 5), 0, (2, 3, 4, 5), None),
        ((6, 8), 1, (8,), (8,)),
        ((3, 2, 4, 3, 5), 2, (4, 3, 5), None),
    ],
)
def test_layer_norm_matches_onnxruntime(x_shape, axis, scale_shape, bias_shape):
    rng = np.random.default_rng(2)
    constants = {"scale": _f32(rng, *scale_shape)}
    if bias_shape is not None:
        constants["b"] = _f32(rng, *bias_shape)
    check_node("LayerNormalization", {"x": _f32(rng, *x_shape)}, constants, n_outputs=3, axis=axis)


def test_layer_norm_epsilon_stash_type_and_y_only():
    rng = np.random.default_rng(3)
    x, constants = 0.1 * _f32(rng, 2, 3, 8), {"scale": _f32(rng, 8), "b": _f32(rng, 8)}
    check_node("LayerNormalization", {"x": x}, constants, n_outputs=3, epsilon=1e-2, stash_type=1)
    check_node("LayerNormalization", {"x": x}, constants, n_outputs=1)


@pytest.mark.parametrize("x_shape", [(2, 3, 7), (2, 3, 5, 6), (1, 4, 3, 4, 5)])
@pytest.mark.parametrize("epsilon", [1e-5, 1e-2])
def test_instance_norm_matches_onnxruntime(x_shape, epsilon):
    rng = np.random.default_rng(4)
    constants = {"scale": _f32(rng, x_shape[1]), "b": _f32(rng, x_shape[1])}
    check_node("InstanceNormalization", {"x": _f32(rng, *x_shape)}, constants, epsilon=epsilon)


@pytest.mark.parametrize(
    "x_shape, attrs",
    [
        ((2, 7, 4, 5), {"size": 3}),
        ((2, 7, 4, 5), {"size": 5, "alpha": 0.01, "beta": 0.5, "bias": 2.0}),
        ((1, 3, 4, 5), {"size": 7, "alpha": 0.5, "beta": 1.0}),
        ((1, 4, 3, 3), {"size": 1, "alpha": 1.0, "bias": 0.5}),
    ],
)
def test_lrn_matches_onnxruntime(x_shape, attrs):
    check_node("LRN", {"x": _f32(np.random.default_rng(5), *x_shape)}, **attrs)


def _t(*shape, dtype=DType.FLOAT32):
    return TensorType(shape, dtype)


@pytest.mark.parametrize(
    "op, inputs, attrs, message",
    [
        (BatchNormalization, [_t(2, 3, 4), _t(4), _t(3), _t(3), _t(3)], {}, r"scale must have shape \[3\]"),
        (BatchNormalization, [_t(2, 3, 4), _t(3), _t(3), _t(3), _t(3)], {"spatial": 0}, r"shape \[3, 4\]"),
        (BatchNormalization, [_t(3), _t(3), _t(3), _t(3), _t(3)], {}, "rank >= 2"),
        (BatchNormalization, [_t(2, 3, dtype=DType.INT32), *[_t(3)] * 4], {}, "floating-point"),
        (LayerNormalization, [_t(2, 3, 4), _t(3)], {}, r"Scale\[3\] does not broadcast"),
        (LayerNormalization, [_t(2, 3, 4), _t(4), _t(2, 4)], {}, r"B\[2, 4\] does not broadcast"),
        (LayerNormalization, [_t(2, 3, 4), _t(4)], {"axis": 3}, "out of range"),
        (InstanceNormalization, [_t(2, 3, 4), _t(2), _t(3)], {}, r"scale must have shape \[3\]"),
        (InstanceNormalization, [_t(2, 3), _t(3), _t(3)], {}, "rank >= 3"),
        (LRN, [_t(2, 3, 4, 4)], {"size": 0}, "size must be positive"),
    ],
)
def test_norm_shape_errors(op, inputs, attrs, message):
    with pytest.raises(ShapeError, match=message):
        op.infer(inputs, op.make_attrs(**attrs))
