"""Lowering cases for sampling and data movement (ops/sampling.py), LpPool and CumProd.

GridSample's grids reach past [-1, 1] so that every padding mode meets points outside the
image; MaxUnpool's indices are what MaxPool would write, one position in each window.
"""

from __future__ import annotations

import numpy as np

from cases import Case, Draw, case, integers, normal, positive
from cnncompile.ops.sampling import GridPadding, GridSampleMode


def uniform(low: float, high: float, *shape: int) -> Draw:
    return lambda rng: rng.uniform(low, high, shape).astype(np.float32)


def pool_indices(n: int, c: int, h: int, w: int, k: int) -> Draw:
    """Flat indices into (n, c, h * k, w * k), each in its own k x k window, as MaxPool(k, stride k) finds them."""

    def draw(rng: np.random.Generator) -> np.ndarray:
        batch, channel, row, col = np.meshgrid(*(np.arange(d) for d in (n, c, h, w)), indexing="ij")
        y = row * k + rng.integers(0, k, row.shape)
        x = col * k + rng.integers(0, k, col.shape)
        return (((batch * c + channel) * h * k + y) * w * k + x).astype(np.int64)

    return draw


IMAGE = normal(2, 3, 5, 7)
GRID = uniform(-1.3, 1.3, 2, 4, 6, 2)
VOLUME = normal(1, 2, 3, 4, 5)
VOLUME_GRID = uniform(-1.2, 1.2, 1, 2, 3, 4, 3)

CASES: list[Case] = [
    case("GridSample", IMAGE, GRID, id="GridSample-linear-zeros"),
    case("GridSample", IMAGE, GRID, mode=GridSampleMode.LINEAR, padding_mode=GridPadding.REFLECTION,
         align_corners=1, id="GridSample-linear-reflection-aligned"),
    case("GridSample", IMAGE, GRID, mode=GridSampleMode.NEAREST, padding_mode=GridPadding.BORDER,
         id="GridSample-nearest-border"),
    case("GridSample", IMAGE, GRID, mode=GridSampleMode.NEAREST, padding_mode=GridPadding.REFLECTION,
         id="GridSample-nearest-reflection"),
    case("GridSample", IMAGE, GRID, mode=GridSampleMode.CUBIC, padding_mode=GridPadding.ZEROS, align_corners=1,
         id="GridSample-cubic-zeros-aligned"),
    case("GridSample", IMAGE, GRID, mode=GridSampleMode.CUBIC, padding_mode=GridPadding.REFLECTION,
         id="GridSample-cubic-reflection"),
    case("GridSample", IMAGE, GRID, mode=GridSampleMode.CUBIC, padding_mode=GridPadding.BORDER,
         id="GridSample-cubic-border"),
    case("GridSample", VOLUME, VOLUME_GRID, padding_mode=GridPadding.BORDER, id="GridSample-3d-linear-border"),
    case("GridSample", VOLUME, VOLUME_GRID, mode=GridSampleMode.NEAREST, align_corners=1,
         id="GridSample-3d-nearest-zeros"),
    case("AffineGrid", normal(2, 2, 3), size=(2, 3, 4, 5), id="AffineGrid-2d"),
    case("AffineGrid", normal(1, 3, 4), size=(1, 1, 2, 3, 4), align_corners=1, id="AffineGrid-3d-aligned"),
    case("CenterCropPad", normal(3, 8, 5), shape=(5, 9), axes=(1, -1), id="CenterCropPad-crop-and-pad"),
    case("CenterCropPad", normal(3, 20, 8), shape=(10, 9), axes=(1, 2), id="CenterCropPad-pad-by-one"),
    case("CenterCropPad", integers(4, 7, low=-9, high=9, dtype="int32"), shape=(6, 10), id="CenterCropPad-int"),
    case("Col2Im", normal(2, 12, 18), image_shape=(5, 6), block_shape=(2, 2), strides=(2, 1), dilations=(1, 2),
         pads=(1, 1, 0, 1), id="Col2Im-strided-dilated-padded"),
    case("Col2Im", normal(1, 6, 3), image_shape=(5,), block_shape=(3,), strides=(1,), id="Col2Im-1d"),
    case("MaxUnpool", normal(2, 3, 3, 4), pool_indices(2, 3, 3, 4, 2), kernel_shape=(2, 2), strides=(2, 2)),
    case("LpPool", normal(2, 3, 9, 8), kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 0), id="LpPool-p2"),
    case("LpPool", normal(1, 2, 10, 9), kernel_shape=(2, 3), dilations=(2, 1), ceil_mode=1, strides=(2, 2), p=3,
         id="LpPool-p3-dilated-ceil"),
    case("LpPool", normal(2, 4, 11), kernel_shape=(4,), p=1, id="LpPool-1d-p1"),
    case("CumProd", positive(3, 4, 5), axis=(1,), id="CumProd"),
    case("CumProd", positive(3, 6), axis=(-1,), exclusive=1, reverse=1, id="CumProd-exclusive-reverse"),
    case("CumProd", integers(2, 5, low=-3, high=4, dtype="int32"), axis=(0,), exclusive=1, id="CumProd-int"),
]
