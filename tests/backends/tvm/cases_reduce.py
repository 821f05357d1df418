"""Lowering cases for the reductions and ranking ops: every ReduceX over axes and none, ArgMax/ArgMin
with their tie rule, CumSum's four directions, TopK both ways, Hardmax, LpNormalization.

Ties are drawn on purpose (small integer values) where an op's rule for them is what is tested.
"""

from __future__ import annotations

import numpy as np

from cases import Case, case, integers, normal, positive

X = normal(2, 3, 5, 6, scale=2.0)
TIES = integers(3, 4, 6, low=-3, high=3, dtype="float32")  # few distinct values: many ties
REDUCTIONS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare",
              "ReduceLogSumExp"]

CASES: list[Case] = [
    *(case(op, X, axes=(1, 3), id=f"{op}-axes") for op in REDUCTIONS),
    *(case(op, X, keepdims=0, id=f"{op}-all-dropdims") for op in REDUCTIONS),
    case("ReduceProd", positive(2, 3, 5, 6), axes=(2,), keepdims=0),
    case("ReduceProd", positive(4, 6), id="ReduceProd-all"),
    case("ReduceLogSum", positive(2, 3, 5, 6), axes=(-1, 1)),
    # exp(200) overflows float32 unless shifted by the max
    case("ReduceLogSumExp", normal(2, 8, scale=200.0), axes=(1,), id="ReduceLogSumExp-large"),
    case("ReduceSumSquare", X, axes=(), noop_with_empty_axes=1, id="ReduceSumSquare-noop"),
    case("ReduceMax", integers(3, 7, low=-50, high=50, dtype="int32"), axes=(1,), keepdims=0, id="ReduceMax-int32"),
    case("ReduceSum", integers(2, 3, 4, low=-9, high=9, dtype="int64"), axes=(0, 2), id="ReduceSum-int64"),
    case("ReduceL2", integers(3, 5, low=-9, high=9, dtype="int32"), axes=(1,), id="ReduceL2-int32"),
    case("ReduceMean", integers(3, 5, low=-9, high=9, dtype="int32"), axes=(1,), id="ReduceMean-int32"),
    case("ArgMax", TIES, axis=1),
    case("ArgMax", TIES, axis=-1, keepdims=0, select_last_index=1, id="ArgMax-last-dropdims"),
    case("ArgMin", TIES, axis=2),
    case("ArgMin", integers(4, 9, low=0, high=4, dtype="uint8"), axis=0, select_last_index=1, id="ArgMin-uint8-last"),
    case("Hardmax", TIES, axis=1),
    case("Hardmax", normal(2, 3, 10), id="Hardmax-last-axis"),
    case("CumSum", normal(3, 7, 4), axis=(1,)),
    case("CumSum", normal(3, 7, 4), axis=(-1,), exclusive=1, id="CumSum-exclusive"),
    case("CumSum", normal(3, 7, 4), axis=(1,), reverse=1, id="CumSum-reverse"),
    case("CumSum", integers(5, 6, low=-9, high=9, dtype="int32"), axis=(0,), exclusive=1, reverse=1,
         id="CumSum-int32-reverse-exclusive"),
    case("TopK", TIES, k=(3,), axis=2),
    case("TopK", TIES, k=(4,), axis=1, largest=0, id="TopK-smallest"),
    case("TopK", normal(2, 10), k=(10,), id="TopK-whole-axis"),
    case("TopK", integers(3, 8, low=-2, high=2, dtype="int64"), k=(5,), axis=-1, id="TopK-int64"),
    case("LpNormalization", X, axis=1),
    case("LpNormalization", X, axis=-1, p=1, id="LpNormalization-p1"),
    case("LpNormalization", lambda rng: np.concatenate([np.zeros((1, 4), np.float32),
                                                        rng.standard_normal((2, 4)).astype(np.float32)]),
         axis=1, id="LpNormalization-zero-row"),
]
