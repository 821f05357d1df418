"""Lowering cases for index-driven reads and writes (ops/indexing.py), generated tensors
(ops/generate.py) and SpaceToDepth.

Index draws cover negative indices and, for the scatters, duplicates (the last update
wins without a reduction, every one counts with one); ScatterElements also has indices
narrower than data off the axis, OneHot indices past depth (an all-off row) and float
indices (truncated).
"""

from __future__ import annotations

import numpy as np

from cases import Case, Draw, case, integers, normal
from cnncompile.ir.types import DType
from cnncompile.ops.indexing import ScatterReduction

X = normal(2, 3, 5, 6, scale=2.0)


def flags(*shape: int) -> Draw:
    return lambda rng: rng.integers(0, 2, shape).astype(bool)


def _scatter_cases() -> list[Case]:
    cases = [
        case("ScatterElements", normal(3, 6), integers(3, 4, low=-6, high=6), normal(3, 4), axis=1,
             id="ScatterElements-duplicates"),
        case("ScatterND", normal(4, 5, 3), integers(2, 3, 1, low=-4, high=4), normal(2, 3, 5, 3),
             id="ScatterND-duplicate-rows"),
    ]
    for reduction in (ScatterReduction.ADD, ScatterReduction.MUL, ScatterReduction.MAX, ScatterReduction.MIN):
        name = reduction.value
        cases += [
            case("ScatterElements", normal(4, 5, 3), integers(2, 5, 2, low=-5, high=5, dtype="int32"),
                 normal(2, 5, 2), axis=-2, reduction=reduction, id=f"ScatterElements-{name}-narrow-indices"),
            case("ScatterND", normal(4, 5, 3), integers(6, 2, low=-4, high=4), normal(6, 3), constant=(1,),
                 reduction=reduction, id=f"ScatterND-{name}"),
        ]
    return cases


CASES: list[Case] = [
    case("Expand", normal(3, 1, 4), shape=(2, 3, 5, 4)),
    case("Expand", normal(2, 3, 1), shape=(1, 1, 3, 6), id="Expand-shape-with-ones"),
    case("Expand", integers(3, 1, low=-9, high=9), shape=(3, 4), id="Expand-int64"),
    case("Tile", normal(2, 3, 4), repeats=(2, 1, 3)),
    case("Tile", flags(3, 2), repeats=(1, 4), id="Tile-bool"),
    case("GatherElements", normal(3, 5, 4), integers(3, 2, 4, low=-5, high=5), axis=1),
    case("GatherElements", normal(4, 3), integers(6, 2, low=-4, high=4, dtype="int32"), id="GatherElements-axis0"),
    case("GatherND", normal(2, 3, 4), integers(5, 2, low=-2, high=2)),
    case("GatherND", normal(2, 3, 4, 5), integers(2, 6, 2, low=-3, high=3), constant=(1,), batch_dims=1,
         id="GatherND-batch-dims"),
    case("GatherND", integers(4, 3, low=-50, high=50, dtype="int32"), integers(2, 2, 2, low=0, high=3),
         id="GatherND-int32-elements"),
    *_scatter_cases(),
    case("Compress", normal(3, 5, 2), condition=np.array([True, False, True, True]), axis=1),
    case("Compress", normal(3, 4), condition=np.array([0, 1, 1, 0, 0, 1, 1], bool),
         id="Compress-flat"),
    case("Range", start=np.array(-1.5, np.float32), limit=np.array(4.0, np.float32),
         delta=np.array(0.75, np.float32)),
    case("Range", start=np.array(10, np.int32), limit=np.array(1, np.int32), delta=np.array(-3, np.int32),
         id="Range-int32-descending"),
    case("EyeLike", normal(4, 6), k=2),
    case("EyeLike", normal(5, 3), dtype=DType.INT64, k=-1, id="EyeLike-int64-below"),
    case("OneHot", integers(3, 4, low=-5, high=7), normal(2), constant=(1,), depth=5, axis=1),
    case("OneHot", lambda rng: rng.uniform(-4.9, 4.9, (6,)).astype(np.float32),
         integers(2, low=-9, high=9, dtype="int32"), depth=5, id="OneHot-float-indices"),
    # a run-time k of shape [1]: a 0-d graph input reaches the compiled model as 1-d (runtime.py's
    # np.ascontiguousarray), which the VM refuses
    case("Trilu", normal(2, 4, 5), integers(1, low=-4, high=5)),
    case("Trilu", normal(5, 3), lambda rng: np.array(-1), constant=(1,), upper=0, id="Trilu-lower-constant-k"),
    case("Trilu", normal(3, 4), id="Trilu-no-k"),
    case("Size", X),
    case("CastLike", X, integers(2, low=0, high=3, dtype="int32")),
    case("CastLike", integers(3, 4, low=-2, high=2), normal(1, dtype="float64"), id="CastLike-int-to-float64"),
    case("CastLike", X, flags(1), id="CastLike-to-bool"),
    case("SpaceToDepth", normal(1, 3, 4, 6), blocksize=2),
    case("SpaceToDepth", normal(2, 2, 6, 3), blocksize=3, id="SpaceToDepth-block3"),
]
