"""The transformer ops of opset 23: RMSNormalization, RotaryEmbedding and Attention.

Each kernel transcribes the op's ONNX definition (onnx.reference's op_rms_normalization,
op_rotary_embedding, op_attention), on [batch, heads, sequence, head_size] tensors: a 3-D
operand ([batch, sequence, heads * head_size]) is split into its heads first and merged
back at the end, so the arithmetic is written once.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.norm import _check_float
from cnncompile.ops.reduce import Softmax
from cnncompile.ops.registry import declare, normalize_axis, per_output


def _check_broadcasts(op: str, name: str, t: TensorType, target: Sequence[int], what: str) -> None:
    """`t` broadcasts to `target` (NumPy rules, right-aligned), else a ShapeError naming both."""
    if t.rank > len(target) or any(d not in (1, n) for d, n in zip(reversed(t.shape), reversed(target))):
        raise ShapeError(f"{op}: {name}{list(t.shape)} does not broadcast to {what} {list(target)}")


# -- RMSNormalization --------------------------------------------------------------------------


@dataclass(frozen=True)
class RMSNormalizationAttrs:
    """`stash_type` names the precision of the statistics; the reference keeps them in its own, which is
    at least float32."""

    axis: int = -1
    epsilon: float = 1e-5
    stash_type: DType = DType.FLOAT32


def _rms_norm_shape(x: TensorType, scale: TensorType, **attrs) -> TensorType:
    axis = normalize_axis(attrs["axis"], x.rank, "RMSNormalization")
    _check_float("RMSNormalization", x, scale)
    if not attrs["stash_type"].is_float:
        raise ShapeError(f"RMSNormalization: stash_type must be a floating type, got {attrs['stash_type'].value}")
    _check_broadcasts("RMSNormalization", "Scale", scale, x.shape[axis:],
                      f"the normalized dims of X{list(x.shape)} (axis={attrs['axis']}):")
    return x


@declare("RMSNormalization", RMSNormalizationAttrs, inputs=("X", "Scale"), shape=_rms_norm_shape,
         flops=per_output(4))
def RMSNormalization(x, scale, *, axis, epsilon, **_):
    """X / sqrt(mean(X^2) + epsilon) * Scale, the mean over the dims from `axis` on."""
    axes = tuple(range(normalize_axis(axis, x.ndim, "RMSNormalization"), x.ndim))
    rms = np.sqrt((x * x).mean(axis=axes, keepdims=True) + epsilon)
    return (x / rms * scale).astype(x.dtype, copy=False)


# -- RotaryEmbedding ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RotaryEmbeddingAttrs:
    """`rotary_embedding_dim` 0 rotates the whole head; `num_heads` splits a 3-D input's hidden dim."""

    interleaved: int = 0
    rotary_embedding_dim: int = 0
    num_heads: int = 0


def rotary_dims(x: TensorType, num_heads: int, rotary_embedding_dim: int) -> tuple[int, int]:
    """(heads, head_size) of X and how many leading features of each head rotate, checked."""
    if x.rank == 4:
        heads, head_size = x.shape[1], x.shape[3]
    elif x.rank == 3:
        if num_heads <= 0 or x.shape[2] % num_heads:
            raise ShapeError(f"RotaryEmbedding: a 3-D input{list(x.shape)} needs num_heads > 0 dividing its hidden "
                             f"size {x.shape[2]}, got num_heads={num_heads}")
        heads, head_size = num_heads, x.shape[2] // num_heads
    else:
        raise ShapeError(f"RotaryEmbedding takes a 3-D [batch, sequence, hidden] or 4-D [batch, heads, sequence, "
                         f"head_size] input, got {list(x.shape)}")
    rotated = rotary_embedding_dim or head_size
    if rotated % 2 or rotated > head_size:
        raise ShapeError(f"RotaryEmbedding: rotary_embedding_dim={rotated} must be even and at most the head size "
                         f"{head_size}")
    return heads, rotated


def _rotary_shape(x: TensorType, cos: TensorType, sin: TensorType, position_ids: TensorType | None = None,
                  **attrs) -> TensorType:
    _check_float("RotaryEmbedding", x, cos, sin)
    _, rotated = rotary_dims(x, attrs["num_heads"], attrs["rotary_embedding_dim"])
    batch, sequence = x.shape[0], x.shape[2] if x.rank == 4 else x.shape[1]
    if cos.shape != sin.shape:
        raise ShapeError(f"RotaryEmbedding: cos_cache{list(cos.shape)} and sin_cache{list(sin.shape)} must have one "
                         "shape")
    if position_ids is not None:
        if position_ids.dtype != DType.INT64 or position_ids.shape != (batch, sequence):
            raise ShapeError(f"RotaryEmbedding: position_ids must be int64 [batch, sequence] = {[batch, sequence]}, "
                             f"got {position_ids}")
        want = "[max_position, rotary_dim / 2]"
        fits = cos.rank == 2 and cos.shape[1] == rotated // 2
    else:
        want = f"[batch, sequence, rotary_dim / 2] = {[batch, sequence, rotated // 2]}"
        fits = cos.shape == (batch, sequence, rotated // 2)
    if not fits:
        raise ShapeError(f"RotaryEmbedding: the caches must be {want} (rotary_dim {rotated}), got "
                         f"{list(cos.shape)}")
    return x


@declare("RotaryEmbedding", RotaryEmbeddingAttrs, inputs=("X", "cos_cache", "sin_cache", "position_ids?"),
         shape=_rotary_shape, flops=per_output(3))
def RotaryEmbedding(x, cos_cache, sin_cache, position_ids=None, *, interleaved, rotary_embedding_dim, num_heads):
    """Rotate each pair of a head's first rotary_dim features by its position's angle: (x1, x2) ->
    (cos*x1 - sin*x2, sin*x1 + cos*x2), pairs being the two halves or, interleaved, neighbours."""
    heads = x.transpose(0, 2, 1, 3) if x.ndim == 4 else x.reshape(*x.shape[:2], num_heads, -1)  # [B, S, H, D]
    rotated = rotary_embedding_dim or heads.shape[-1]
    if position_ids is not None:
        if position_ids.min() < 0 or position_ids.max() >= cos_cache.shape[0]:
            raise ShapeError(f"RotaryEmbedding: position_ids range over [{position_ids.min()}, {position_ids.max()}] "
                             f"but the caches hold {cos_cache.shape[0]} positions")
        cos_cache, sin_cache = cos_cache[position_ids], sin_cache[position_ids]
    cos, sin = cos_cache[:, :, None, :], sin_cache[:, :, None, :]
    first, second = (slice(0, rotated, 2), slice(1, rotated, 2)) if interleaved else \
        (slice(0, rotated // 2), slice(rotated // 2, rotated))
    x1, x2 = heads[..., first], heads[..., second]
    out = heads.copy()
    out[..., first] = cos * x1 - sin * x2
    out[..., second] = sin * x1 + cos * x2
    return (out.transpose(0, 2, 1, 3) if x.ndim == 4 else out.reshape(x.shape)).astype(x.dtype, copy=False)


# -- Attention ---------------------------------------------------------------------------------


class QkOutput(enum.Enum):
    """Which stage of the scores the fourth output (qk_matmul_output) holds."""

    PRODUCT = 0    # scale * Q @ K^T
    MASKED = 1     # ... + attention bias (attn_mask, causal)
    SOFTCAPPED = 2  # ... softcapped (unchanged when softcap is 0)
    SOFTMAX = 3    # the attention probabilities


@dataclass(frozen=True)
class AttentionAttrs:
    """`scale` None means 1/sqrt(head_size); `softcap` 0 means none. `softmax_precision` asks for at least
    that precision; both backends compute the softmax in float32 or wider."""

    is_causal: int = 0
    kv_num_heads: int = 0
    q_num_heads: int = 0
    qk_matmul_output_mode: QkOutput = QkOutput.PRODUCT
    scale: float | None = None
    softcap: float = 0.0
    softmax_precision: DType | None = None


@dataclass(frozen=True)
class AttentionDims:
    """The sizes Attention works in, read off its operands."""

    batch: int
    q_heads: int
    kv_heads: int
    q_len: int
    past_len: int
    kv_len: int
    head_size: int
    v_head_size: int

    @property
    def total_len(self) -> int:
        return self.past_len + self.kv_len


def _split(op: str, name: str, t: TensorType, heads: int, attr: str) -> tuple[int, int, int]:
    """(heads, sequence, head_size) of a 3-D or 4-D operand."""
    if t.rank == 4:
        return t.shape[1], t.shape[2], t.shape[3]
    if heads <= 0 or t.shape[2] % heads:
        raise ShapeError(f"{op}: a 3-D {name}{list(t.shape)} needs {attr} > 0 dividing its hidden size "
                         f"{t.shape[2]}, got {attr}={heads}")
    return heads, t.shape[1], t.shape[2] // heads


def attention_dims(q: TensorType, k: TensorType, v: TensorType, past_key: TensorType | None,
                   past_value: TensorType | None, q_num_heads: int, kv_num_heads: int) -> AttentionDims:
    """Attention's sizes, every operand checked against them."""
    if not q.rank == k.rank == v.rank or q.rank not in (3, 4):
        raise ShapeError(f"Attention takes Q, K and V all 3-D or all 4-D, got Q{list(q.shape)}, K{list(k.shape)}, "
                         f"V{list(v.shape)}")
    q_heads, q_len, head = _split("Attention", "Q", q, q_num_heads, "q_num_heads")
    kv_heads, kv_len, k_head = _split("Attention", "K", k, kv_num_heads, "kv_num_heads")
    v_heads, v_len, v_head = _split("Attention", "V", v, kv_num_heads, "kv_num_heads")
    if len({q.shape[0], k.shape[0], v.shape[0]}) > 1 or kv_heads != v_heads or kv_len != v_len or head != k_head:
        raise ShapeError(f"Attention: Q{list(q.shape)}, K{list(k.shape)} and V{list(v.shape)} disagree: they need "
                         "one batch, K and V one head count and sequence, Q and K one head size")
    if q_heads % kv_heads:
        raise ShapeError(f"Attention: Q's {q_heads} heads must be a multiple of K's and V's {kv_heads}")
    if (past_key is None) != (past_value is None):
        raise ShapeError("Attention: past_key and past_value come together; give both or neither")
    past_len = 0
    if past_key is not None:
        past_len = past_key.shape[2] if past_key.rank == 4 else 0
        want_k, want_v = (q.shape[0], kv_heads, past_len, head), (q.shape[0], kv_heads, past_len, v_head)
        if past_key.shape != want_k or past_value.shape != want_v:
            raise ShapeError(f"Attention: past_key{list(past_key.shape)} and past_value{list(past_value.shape)} "
                             f"must be [batch, kv_heads, past, head_size]: {list(want_k)} and {list(want_v)}")
    return AttentionDims(q.shape[0], q_heads, kv_heads, q_len, past_len, kv_len, head, v_head)


def _attention_shape(q: TensorType, k: TensorType, v: TensorType, attn_mask: TensorType | None = None,
                     past_key: TensorType | None = None, past_value: TensorType | None = None, **attrs):
    _check_float("Attention", q, k, v)
    past = [t for t in (past_key, past_value) if t is not None]
    if any(t.dtype != q.dtype for t in (k, v, *past)):
        raise ShapeError(f"Attention: Q, K, V and the past caches must share one dtype, got Q {q}, K {k}, V {v}"
                         + "".join(f", {t}" for t in past))
    d = attention_dims(q, k, v, past_key, past_value, attrs["q_num_heads"], attrs["kv_num_heads"])
    scores = (d.batch, d.q_heads, d.q_len, d.total_len)
    if attn_mask is not None:
        if attn_mask.dtype not in (DType.BOOL, q.dtype):
            raise ShapeError(f"Attention: attn_mask must be bool or Q's {q.dtype.value}, got {attn_mask}")
        if attn_mask.rank < 1 or attn_mask.shape[-1] > d.total_len:
            raise ShapeError(f"Attention: attn_mask{list(attn_mask.shape)} may hold at most the {d.total_len} "
                             "(past + new) key positions in its last dim")
        _check_broadcasts("Attention", "attn_mask", TensorType((*attn_mask.shape[:-1], 1), attn_mask.dtype),
                          (*scores[:-1], 1), "the scores [batch, q_heads, q_sequence, 1]:")
    y = (d.batch, d.q_heads, d.q_len, d.v_head_size) if q.rank == 4 else \
        (d.batch, d.q_len, d.q_heads * d.v_head_size)
    present_key = (d.batch, d.kv_heads, d.total_len, d.head_size)
    present_value = (d.batch, d.kv_heads, d.total_len, d.v_head_size)
    return [TensorType(s, q.dtype) for s in (y, present_key, present_value, scores)]


def _attention_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: AttentionAttrs) -> int:
    """Two products, 2 * scores * head_size each, and about 6 more per score: scale, bias, softmax."""
    y, present_key, present_value, scores = outputs
    return scores.numel * (2 * present_key.shape[-1] + 2 * present_value.shape[-1] + 6)


def _heads(t: np.ndarray, heads: int) -> np.ndarray:
    """A 3-D [batch, sequence, heads * size] operand as 4-D [batch, heads, sequence, size]."""
    return t.reshape(*t.shape[:2], heads, -1).transpose(0, 2, 1, 3) if t.ndim == 3 else t


def attention_bias(attn_mask: np.ndarray | None, q_len: int, past_len: int, total_len: int, is_causal: int,
                   dtype: np.dtype) -> np.ndarray:
    """What Attention adds to the scores: attn_mask (bool: 0 where True, -inf where False), padded with
    -inf to every key position, plus -inf where a causal query would look ahead (key j > query i + past)."""
    bias = np.zeros((q_len, total_len), dtype)
    if attn_mask is not None:
        additive = np.where(attn_mask, 0, -np.inf).astype(dtype) if attn_mask.dtype == np.bool_ else attn_mask
        pad = [(0, 0)] * (additive.ndim - 1) + [(0, total_len - additive.shape[-1])]
        bias = bias + np.pad(additive, pad, constant_values=-np.inf)
    if is_causal:
        ahead = np.arange(total_len) > np.arange(q_len)[:, None] + past_len
        bias = bias + np.where(ahead, -np.inf, 0).astype(dtype)
    return bias


@declare("Attention", AttentionAttrs, inputs=("Q", "K", "V", "attn_mask?", "past_key?", "past_value?"),
         outputs=("Y", "present_key", "present_value", "qk_matmul_output"), shape=_attention_shape,
         flops=_attention_flops)
def Attention(q, k, v, attn_mask=None, past_key=None, past_value=None, *, is_causal, kv_num_heads, q_num_heads,
              qk_matmul_output_mode, scale, softcap, softmax_precision):
    """softmax(softcap(scale * Q @ K^T + bias)) @ V per head, K and V appended to the past caches and each
    shared by q_heads / kv_heads consecutive query heads (grouped-query attention)."""
    q4, k4, v4 = _heads(q, q_num_heads), _heads(k, kv_num_heads), _heads(v, kv_num_heads)
    present_key = k4 if past_key is None else np.concatenate([past_key, k4], axis=2)
    present_value = v4 if past_value is None else np.concatenate([past_value, v4], axis=2)
    groups = q4.shape[1] // k4.shape[1]
    keys, values = np.repeat(present_key, groups, axis=1), np.repeat(present_value, groups, axis=1)
    factor = scale if scale is not None else 1 / np.sqrt(q4.shape[-1])
    product = q4 @ keys.swapaxes(-1, -2) * factor
    past_len = present_key.shape[2] - k4.shape[2]
    masked = product + attention_bias(attn_mask, q4.shape[2], past_len, keys.shape[2], is_causal, q.dtype)
    capped = softcap * np.tanh(masked / softcap) if softcap > 0 else masked
    probabilities = Softmax.kernel(capped, axis=-1)
    y = probabilities @ values
    if q.ndim == 3:
        y = y.transpose(0, 2, 1, 3).reshape(*q.shape[:2], -1)
    stages = {QkOutput.PRODUCT: product, QkOutput.MASKED: masked, QkOutput.SOFTCAPPED: capped,
              QkOutput.SOFTMAX: probabilities}
    return (y.astype(q.dtype, copy=False), present_key, present_value,
            stages[qk_matmul_output_mode].astype(q.dtype, copy=False))
