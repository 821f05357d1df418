"""The transformer ops: RMSNormalization, RotaryEmbedding and Attention, each transcribing its reference
kernel (ops/attention.py) in TE.

A 3-D operand ([batch, sequence, heads * size]) is read through an index map as the 4-D
[batch, heads, sequence, size] the arithmetic is written on, never copied. Attention is one
kernel of reductions: the scores (Q @ K^T over head_size), the softmax's max and sum over the
key positions (lowering.reduce's softmax, in float32 for 16-bit inputs), and the product
with V; bias, softcap and the grouped-query head map are element-wise in between.
Out-of-range position_ids are clamped (the reference rejects them), as Gather's lowering does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tvm import te, tirx

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import broadcast_read, const, widen
from cnncompile.backends.tvm.lowering.reduce import keep_index, reduce_axes, softmax
from cnncompile.ops import attention as ops
from cnncompile.ops.registry import OpDef

Reader = Callable[..., tirx.Expr]


def _rms_norm(call: Call) -> Kernel:
    """X / sqrt(mean(X^2) + epsilon) * Scale, summing the squares in the accumulator type."""
    x, scale = call.inputs
    shape = shape_of(x)
    axes = list(range(call.attrs.axis % len(shape), len(shape)))
    wide = call.in_types[0].dtype.accumulator.value
    squares = reduce_axes(lambda *i: widen(x[i], wide) * widen(x[i], wide), shape, axes, te.sum, "square_sum")
    count, eps = const(math.prod(shape[a] for a in axes), wide), const(call.attrs.epsilon, wide)
    rms = te.compute(shape_of(squares), lambda *i: tirx.sqrt(squares[i] / count + eps), name="rms")

    def normalize(*i):
        return (widen(x[i], wide) / rms[keep_index(i, axes)] * widen(broadcast_read(scale, i), wide)).astype(x.dtype)

    return Kernel([te.compute(shape, normalize, name="y")], KernelKind.REDUCE)


def _as_heads(t: te.Tensor, heads: int) -> Reader:
    """t[b, h, s, d] of a 4-D operand, or of a 3-D one read as its heads."""
    if len(shape_of(t)) == 4:
        return lambda b, h, s, d: t[b, h, s, d]
    size = shape_of(t)[2] // heads
    return lambda b, h, s, d: t[b, s, h * size + d]


def _rotary(call: Call) -> Kernel:
    """Each rotated feature d pairs with a partner (the other half, or its neighbour when interleaved):
    cos * x[d] -/+ sin * x[partner], minus for the pair's first; the features past rotary_dim stay."""
    x, cos, sin, *position = call.inputs
    a = call.attrs
    shape = shape_of(x)
    heads, rotated = ops.rotary_dims(call.in_types[0], a.num_heads, a.rotary_embedding_dim)
    half = rotated // 2
    read = _as_heads(x, heads)

    def cache(table: te.Tensor, b, s, f):
        if not position:
            return table[b, s, f]
        where = tirx.max(tirx.min(position[0][b, s], shape_of(table)[0] - 1), 0)
        return table[where.astype("int32"), f]

    def rotate(b, h, s, d):
        inside = d < rotated
        first = d % 2 == 0 if a.interleaved else d < half
        partner = tirx.Select(first, d + 1, d - 1) if a.interleaved else tirx.Select(first, d + half, d - half)
        frequency = d // 2 if a.interleaved else tirx.Select(first, d, d - half)
        partner, frequency = tirx.Select(inside, partner, d), tirx.Select(inside, frequency, 0)
        sign = tirx.Select(first, const(-1, x.dtype), const(1, x.dtype))
        turned = cache(cos, b, s, frequency) * read(b, h, s, d) + sign * cache(sin, b, s, frequency) * read(
            b, h, s, partner)
        return tirx.Select(inside, turned, read(b, h, s, d))

    if len(shape) == 4:
        out = te.compute(shape, rotate, name="y")
    else:
        size = shape[2] // heads
        out = te.compute(shape, lambda b, s, n: rotate(b, n // size, s, n % size), name="y")
    return Kernel([out], KernelKind.INJECTIVE)


def _present(past: te.Tensor | None, new: Reader, shape: tuple[int, ...], name: str) -> te.Tensor:
    """The cache with the new keys (values) appended along the sequence, indices clamped into each part."""
    past_len = shape_of(past)[2] if past is not None else 0

    def concat(b, g, t, d):
        fresh = new(b, g, tirx.max(t - past_len, 0), d)
        return fresh if past is None else tirx.Select(t < past_len, past[b, g, tirx.min(t, past_len - 1), d], fresh)

    return te.compute(shape, concat, name=name)


def _mask_bias(mask: te.Tensor, wide: str) -> Reader:
    """attn_mask's term for score (b, h, i, j): its leading dims broadcast, its last padded with -inf (a bool
    mask: 0 where True, -inf where False)."""
    shape = shape_of(mask)
    lead, width = shape[:-1], shape[-1]
    minus_inf = const(float("-inf"), wide)

    def bias(b, h, i, j):
        spot = (*_broadcast_index(lead, (b, h, i)), tirx.min(j, width - 1))
        value = tirx.Select(mask[spot], const(0, wide), minus_inf) if str(mask.dtype) == "bool" else widen(mask[spot], wide)
        return tirx.Select(j < width, value, minus_inf)

    return bias


def _broadcast_index(shape: tuple[int, ...], index: tuple) -> tuple:
    """The index into a tensor of `shape` that broadcasts (right-aligned) to the element at `index`."""
    trailing = index[len(index) - len(shape):] if shape else ()
    return tuple(0 if d == 1 else i for d, i in zip(shape, trailing))


def _attention(call: Call) -> Kernel:
    q, k, v = call.inputs[:3]
    a = call.attrs
    op = ops.Attention
    mask, past_key, past_value = (op.operand(call.inputs, name) for name in ("attn_mask", "past_key", "past_value"))
    d = ops.attention_dims(*call.in_types[:3], op.operand(call.in_types, "past_key"),
                           op.operand(call.in_types, "past_value"), a.q_num_heads, a.kv_num_heads)
    y_type, key_type, value_type, scores_type = call.out_types
    wide = y_type.dtype.accumulator.value
    group = d.q_heads // d.kv_heads
    read_q = _as_heads(q, d.q_heads)
    keys = _present(past_key, _as_heads(k, d.kv_heads), key_type.shape, "present_key")
    values = _present(past_value, _as_heads(v, d.kv_heads), value_type.shape, "present_value")

    r = te.reduce_axis((0, d.head_size), name="r")
    scores = te.compute(scores_type.shape, lambda b, h, i, j: te.sum(
        widen(read_q(b, h, i, r), wide) * widen(keys[b, h // group, j, r], wide), axis=r), name="scores")
    factor = const(a.scale if a.scale is not None else 1 / math.sqrt(d.head_size), wide)
    product = te.compute(scores_type.shape, lambda *i: scores[i] * factor, name="product")
    bias = _mask_bias(mask, wide) if mask is not None else None
    minus_inf, zero = const(float("-inf"), wide), const(0, wide)

    def add_bias(b, h, i, j):
        total = product[b, h, i, j] + bias(b, h, i, j) if bias is not None else product[b, h, i, j]
        return total + tirx.Select(j > i + d.past_len, minus_inf, zero) if a.is_causal else total

    masked = te.compute(scores_type.shape, add_bias, name="masked")
    capped = masked
    if a.softcap > 0:
        cap = const(a.softcap, wide)
        capped = te.compute(scores_type.shape, lambda *i: cap * tirx.tanh(masked[i] / cap), name="capped")
    probabilities = softmax(capped, 3, name="probabilities")

    t = te.reduce_axis((0, d.total_len), name="t")
    mixed = te.compute((d.batch, d.q_heads, d.q_len, d.v_head_size), lambda b, h, i, e: te.sum(
        probabilities[b, h, i, t] * widen(values[b, h // group, t, e], wide), axis=t), name="mixed")
    store = y_type.dtype.value
    if len(y_type.shape) == 4:
        y = te.compute(y_type.shape, lambda *i: mixed[i].astype(store), name="y")
    else:
        y = te.compute(y_type.shape, lambda b, i, n: mixed[b, n // d.v_head_size, i, n % d.v_head_size].astype(
            store), name="y")
    stage = {ops.QkOutput.PRODUCT: product, ops.QkOutput.MASKED: masked, ops.QkOutput.SOFTCAPPED: capped,
             ops.QkOutput.SOFTMAX: probabilities}[a.qk_matmul_output_mode]
    qk = te.compute(scores_type.shape, lambda *i: stage[i].astype(store), name="qk_matmul_output")
    return Kernel([y, keys, values, qk], KernelKind.REDUCE)


LOWERINGS: dict[OpDef, Lowering] = {
    ops.RMSNormalization: Lowering(_rms_norm),
    ops.RotaryEmbedding: Lowering(_rotary),
    ops.Attention: Lowering(_attention),
}
