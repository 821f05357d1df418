"""The opset-23 transformer ops against onnxruntime: RMSNormalization, RotaryEmbedding, Attention.

onnx's ReferenceEvaluator is the oracle where onnxruntime 1.32 is not: it softcaps
Attention's scores before adding attn_mask, and its qk_matmul_output_mode=1 output leaves
the mask out, where the spec's diagram (and onnx's stored conformance outputs) add the mask
first and include it; and it has no word on an attn_mask shorter than the key positions,
which the spec pads with -inf.
"""

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import cnncompile
from cnncompile.errors import ExecutionError, ShapeError
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error
from onnx_harness import check_node, single_node_model

OPSET = 23


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# -- RMSNormalization --------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape, axis, scale_shape", [
    ((2, 3, 4, 5), -1, (5,)), ((2, 3, 4, 5), 1, (3, 1, 5)), ((6, 8), 0, (6, 8)), ((2, 5, 16), -2, (5, 16)),
])
def test_rms_norm_matches_onnxruntime(x_shape, axis, scale_shape):
    rng = np.random.default_rng(0)
    check_node("RMSNormalization", {"x": _f32(rng, *x_shape)}, {"scale": _f32(rng, *scale_shape)}, opset=OPSET,
               axis=axis, epsilon=1e-3)


def test_rms_norm_refuses_a_scale_that_does_not_fit_the_normalized_dims():
    rng = np.random.default_rng(1)
    model = single_node_model("RMSNormalization", {"x": _f32(rng, 2, 3, 4)}, {"scale": _f32(rng, 3)},
                              opset=OPSET)
    with pytest.raises(ShapeError, match=r"Scale\[3\] does not broadcast to the normalized dims"):
        cnncompile.load_onnx(model)


# -- RotaryEmbedding ---------------------------------------------------------------------------


def _caches(rng, *shape):
    angles = rng.uniform(0, 2 * np.pi, shape)
    return {"cos": np.cos(angles).astype(np.float32), "sin": np.sin(angles).astype(np.float32)}


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rotary_dim", [0, 4])
def test_rotary_embedding_with_position_ids_matches_onnxruntime(interleaved, rotary_dim):
    rng = np.random.default_rng(2)
    half = (rotary_dim or 8) // 2
    inputs = {"x": _f32(rng, 2, 3, 4, 8), **_caches(rng, 12, half),
              "positions": rng.integers(0, 12, (2, 4)).astype(np.int64)}
    check_node("RotaryEmbedding", inputs, input_order=["x", "cos", "sin", "positions"], opset=OPSET,
               interleaved=interleaved, rotary_embedding_dim=rotary_dim)


def test_rotary_embedding_3d_without_position_ids_matches_onnxruntime():
    rng = np.random.default_rng(3)
    check_node("RotaryEmbedding", {"x": _f32(rng, 2, 4, 12), **_caches(rng, 2, 4, 2)}, opset=OPSET, num_heads=3)


@pytest.mark.parametrize("x_shape, cache_shape, attrs, match", [
    ((2, 4, 12), (2, 4, 2), {}, "needs num_heads > 0"),
    ((2, 3, 4, 8), (2, 4, 3), {"rotary_embedding_dim": 6}, None),
    ((2, 3, 4, 8), (2, 4, 2), {"rotary_embedding_dim": 5}, "must be even"),
    ((2, 3, 4, 8), (2, 3, 4), {}, r"the caches must be \[batch, sequence, rotary_dim / 2\]"),
])
def test_rotary_embedding_shape_errors(x_shape, cache_shape, attrs, match):
    rng = np.random.default_rng(4)
    model = single_node_model("RotaryEmbedding", {"x": _f32(rng, *x_shape), **_caches(rng, *cache_shape)},
                              attrs=attrs, opset=OPSET)
    if match is None:  # a partial rotation of 6 of 8 features: legal
        cnncompile.load_onnx(model)
        return
    with pytest.raises(ShapeError, match=match):
        cnncompile.load_onnx(model)


def test_rotary_embedding_position_past_the_caches_is_an_error():
    rng = np.random.default_rng(5)
    inputs = {"x": _f32(rng, 1, 1, 2, 4), **_caches(rng, 3, 2), "positions": np.array([[0, 3]], np.int64)}
    graph = cnncompile.load_onnx(single_node_model("RotaryEmbedding", inputs, opset=OPSET))
    with pytest.raises(ExecutionError, match=r"position_ids range over \[0, 3\] but the caches hold 3 positions"):
        cnncompile.run_reference(graph, inputs)


# -- Attention ---------------------------------------------------------------------------------


def _qkv(rng, q_heads=4, kv_heads=2, q_len=3, kv_len=5, head=8, v_head=6):
    return {"q": _f32(rng, 2, q_heads, q_len, head), "k": _f32(rng, 2, kv_heads, kv_len, head),
            "v": _f32(rng, 2, kv_heads, kv_len, v_head)}


def _past(rng, kv_heads=2, past=4, head=8, v_head=6):
    return {"past_key": _f32(rng, 2, kv_heads, past, head), "past_value": _f32(rng, 2, kv_heads, past, v_head)}


def _bool_mask(rng, *shape):
    mask = rng.random(shape) < 0.6
    mask[..., 0] = True  # every query sees a key: no all -inf softmax row
    return mask


def _check_against_onnx_reference(inputs, n_outputs, **attrs):
    model = single_node_model("Attention", inputs, n_outputs=n_outputs, opset=OPSET, attrs=attrs)
    expected = ReferenceEvaluator(model).run(None, inputs)
    got = cnncompile.run_reference(cnncompile.load_onnx(model), inputs, dtype=DType.FLOAT64)
    for i, want in enumerate(expected):
        assert relative_error(got[f"out{i}"], want) <= 1e-6, f"out{i}"
    return got


@pytest.mark.parametrize("mode", [0, 3])
def test_attention_with_past_mask_and_qk_outputs_matches_onnxruntime(mode):
    rng = np.random.default_rng(6)
    inputs = {**_qkv(rng), "mask": _f32(rng, 3, 9), **_past(rng)}
    check_node("Attention", inputs, n_outputs=4, opset=OPSET, scale=0.3, qk_matmul_output_mode=mode)


@pytest.mark.parametrize("mode", [1, 2])
def test_attention_adds_the_mask_then_softcaps_as_the_spec_draws_it(mode):
    rng = np.random.default_rng(6)
    inputs = {**_qkv(rng), "mask": _f32(rng, 3, 9), **_past(rng)}
    got = _check_against_onnx_reference(inputs, 4, softcap=3.0, qk_matmul_output_mode=mode)
    assert np.abs(got["out3"]).max() < 3.0 if mode == 2 else np.abs(got["out3"]).max() > 3.0


@pytest.mark.parametrize("attrs", [{}, {"is_causal": 1}])
def test_attention_gqa_bool_mask_matches_onnxruntime(attrs):
    rng = np.random.default_rng(7)
    check_node("Attention", {**_qkv(rng), "mask": _bool_mask(rng, 2, 1, 3, 5)}, opset=OPSET, **attrs)


def test_attention_causal_with_past_matches_onnxruntime():
    rng = np.random.default_rng(8)
    inputs = {**_qkv(rng, q_heads=2), "mask": _f32(rng, 2, 2, 3, 9), **_past(rng)}
    check_node("Attention", inputs, n_outputs=3, opset=OPSET, is_causal=1)


def test_attention_3d_matches_onnxruntime():
    rng = np.random.default_rng(9)
    inputs = {"q": _f32(rng, 2, 3, 32), "k": _f32(rng, 2, 5, 16), "v": _f32(rng, 2, 5, 12)}
    check_node("Attention", inputs, opset=OPSET, q_num_heads=4, kv_num_heads=2, is_causal=1)


def test_attention_float16_matches_onnxruntime():
    rng = np.random.default_rng(10)
    inputs = {name: a.astype(np.float16) for name, a in _qkv(rng, q_heads=2, kv_heads=2).items()}
    check_node("Attention", inputs, tol=2e-3, opset=OPSET)


def test_attention_short_mask_is_padded_with_minus_infinity_as_the_reference_evaluator_does():
    rng = np.random.default_rng(11)
    inputs = {**_qkv(rng), "mask": _f32(rng, 3, 6), **_past(rng)}  # 6 of the 9 key positions
    got = _check_against_onnx_reference(inputs, 4, qk_matmul_output_mode=3)
    assert not got["out3"][..., 6:].any()  # the padded keys get no weight


@pytest.mark.parametrize("shapes, attrs, match", [
    ({"q": (2, 3, 32), "k": (2, 5, 16), "v": (2, 5, 12)}, {}, "needs q_num_heads > 0"),
    ({"q": (2, 3, 3, 8), "k": (2, 2, 5, 8), "v": (2, 2, 5, 8)}, {}, "must be a multiple of K's and V's 2"),
    ({"q": (2, 2, 3, 8), "k": (2, 2, 5, 4), "v": (2, 2, 5, 8)}, {}, "Q and K one head size"),
    ({"q": (2, 2, 3, 8), "k": (2, 2, 5, 8), "v": (2, 2, 5, 8), "mask": (3, 6)}, {}, "at most the 5"),
    ({"q": (2, 2, 3, 8), "k": (2, 2, 5, 8), "v": (2, 2, 5, 8), "mask": (4, 5)}, {}, "does not broadcast"),
    ({"q": (2, 2, 3, 8), "k": (2, 2, 5, 8), "v": (2, 2, 5, 8), "mask": (3, 5), "past_key": (2, 2, 1, 8)}, {},
     "give both or neither"),
])
def test_attention_shape_errors(shapes, attrs, match):
    rng = np.random.default_rng(12)
    model = single_node_model("Attention", {n: _f32(rng, *s) for n, s in shapes.items()}, attrs=attrs,
                              opset=OPSET)
    with pytest.raises(ShapeError, match=match):
        cnncompile.load_onnx(model)
