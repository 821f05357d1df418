"""Lowering cases for the transformer ops (ops/attention.py): RMSNormalization over trailing dims,
RotaryEmbedding split in halves or interleaved, partial, with and without position ids, and Attention
3-D and 4-D, grouped-query, with bool and additive masks (short ones padded), causal past caches,
softcap and each qk_matmul_output stage.

Masks leave every query some key, so no softmax row is all -inf (both backends give NaN there).
"""

from __future__ import annotations

import numpy as np

from cases import Case, Draw, case, integers, normal, positive
from cnncompile.ops.attention import QkOutput


def angles(*shape: int) -> tuple[Draw, Draw]:
    """cos and sin caches of one seeded table of angles."""
    return (lambda rng: np.cos(rng.uniform(0, 6.3, shape)).astype(np.float32),
            lambda rng: np.sin(rng.uniform(0, 6.3, shape)).astype(np.float32))


def bool_mask(*shape: int) -> Draw:
    """Random True/False with key 0 always True, so no row is fully masked."""
    def draw(rng):
        mask = rng.random(shape) < 0.6
        mask[..., 0] = True
        return mask
    return draw


Q4, K4, V4 = normal(2, 4, 3, 8), normal(2, 2, 5, 8), normal(2, 2, 5, 6)
PAST_K, PAST_V = normal(2, 2, 4, 8), normal(2, 2, 4, 6)

CASES: list[Case] = [
    case("RMSNormalization", normal(2, 5, 16), positive(16), constant=(1,), epsilon=1e-3),
    case("RMSNormalization", normal(2, 3, 4, 5), positive(3, 1, 5), constant=(1,), axis=1,
         id="RMSNormalization-axis1"),
    case("RotaryEmbedding", normal(2, 3, 4, 8), *angles(2, 4, 4), id="RotaryEmbedding"),
    case("RotaryEmbedding", normal(2, 3, 4, 8), *angles(10, 2), integers(2, 4, low=0, high=10), constant=(1, 2),
         interleaved=1, rotary_embedding_dim=4, id="RotaryEmbedding-interleaved-partial"),
    case("RotaryEmbedding", normal(2, 4, 12), *angles(10, 1), integers(2, 4, low=0, high=10), constant=(1, 2),
         num_heads=3, rotary_embedding_dim=2, id="RotaryEmbedding-3d-partial"),
    case("Attention", Q4, K4, V4, id="Attention-gqa"),
    case("Attention", normal(2, 3, 32), normal(2, 5, 16), normal(2, 5, 12), bool_mask(3, 5), q_num_heads=4,
         kv_num_heads=2, scale=0.2, id="Attention-3d-bool-mask"),
    case("Attention", Q4, K4, V4, normal(2, 1, 3, 7), PAST_K, PAST_V, is_causal=1,
         qk_matmul_output_mode=QkOutput.MASKED, id="Attention-past-causal-short-mask"),
    case("Attention", Q4, K4, V4, normal(3, 5), softcap=2.0, qk_matmul_output_mode=QkOutput.SOFTCAPPED,
         id="Attention-softcap"),
    case("Attention", Q4, K4, V4, is_causal=1, qk_matmul_output_mode=QkOutput.SOFTMAX,
         id="Attention-causal-softmax-output"),
    case("Attention", normal(1, 2, 3, 8, dtype="float16"), normal(1, 2, 5, 8, dtype="float16"),
         normal(1, 2, 5, 8, dtype="float16"), id="Attention-fp16"),
]
