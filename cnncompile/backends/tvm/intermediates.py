"""The shapes of the intermediates a conv kernel writes and reads back: Winograd's tiles and the FFT's
spectra. The plan sizes its workspace by them, the lowerings lay the stages out by them and the cost
model counts their work, so each is computed here once."""

from __future__ import annotations

import math

from cnncompile.algorithms.applicability import ConvSpec
from cnncompile.algorithms.winograd import tile_grid


def winograd_tile_count(spec: ConvSpec, m: int) -> int:
    """F(m, 3)'s tiles over the batch."""
    return spec.batch * math.prod(tile_grid(spec.out, m))


def winograd_columns(spec: ConvSpec, m: int, lanes: int | None) -> int:
    """The NCHW Winograd GEMM's columns: its tiles rounded up to whole vectors on a CPU."""
    tiles = winograd_tile_count(spec, m)
    return tiles if lanes is None else -(-tiles // lanes) * lanes


def spectrum_dims(spec: ConvSpec, lanes: int | None) -> tuple[int, ...]:
    """The FFT's frequencies per axis: the padded input's lengths, the last axis real-to-half-spectrum
    (L/2 + 1 frequencies, rounded up to whole vectors on a CPU)."""
    lengths = [s + b + e for s, b, e in zip(spec.spatial, spec.pads_begin, spec.pads_end)]
    half = lengths[-1] // 2 + 1
    return (*lengths[:-1], half if lanes is None else -(-half // lanes) * lanes)
