"""Register tiles for CPU convolutions, shared by the lowering (which packs the weights to
match) and the schedule (which tiles the loops).

A blocked conv keeps `vectors x rows x cols` accumulators: `vectors` SIMD registers of
consecutive output channels, for each of `rows x cols` output pixels. Each step of the
reduction loads `vectors` weight registers (contiguous, thanks to the packing) and
broadcasts `rows x cols` input scalars, then issues one FMA per accumulator. The best
tile loads least per FMA, keeps enough independent accumulators (>= 8) to hide the FMA
latency, and leaves a few registers for the loads. Rows and columns divide the output
exactly, so no tile straddles the edge of the image; except in `layout_tiles`, whose
one-row tiles run along the flattened image and may overhang its end.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnncompile.errors import AttrError

# An FMA's latency (4 cycles) times the two FMA pipes: fewer independent accumulators stall.
MIN_ACCUMULATORS = 8
# Besides the accumulators and the `vectors` weight registers: a broadcast input and one spare,
# so that LLVM never spills inside the reduction loop (a spill there costs ~10x).
SPARE_REGISTERS = 2


@dataclass(frozen=True)
class ConvTile:
    vectors: int
    rows: int
    cols: int

    @property
    def accumulators(self) -> int:
        return self.vectors * self.rows * self.cols

    @property
    def loads_per_fma(self) -> float:
        return (self.vectors + self.rows * self.cols) / self.accumulators


def requested_tile(tile: tuple[int, ...]) -> ConvTile:
    """A FusedConv's attrs.tile, chosen by tuning, as a ConvTile: three positive numbers."""
    if len(tile) != 3 or min(tile) < 1:
        raise AttrError(f"tile {list(tile)} must be three positive numbers (vectors, rows, cols)")
    return ConvTile(*tile)


def registers(lanes: int) -> int:
    """SIMD registers of the ISA: 32 with AVX-512, 16 with AVX2/SSE."""
    return 32 if lanes >= 16 else 16


def _divisors(n: int, limit: int) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def conv_tiles(channels: int, out_rows: int, out_cols: int, lanes: int) -> list[ConvTile]:
    """Every tile that fits the registers for `channels` output channels (per group) over an
    out_rows x out_cols image, best first (the order `conv_tile` ranks by); empty if the
    channels do not fill whole vectors. Tuning measures the first few."""
    tiles = [
        ConvTile(v, r, c)
        for v in (1, 2, 3, 4) if channels % (v * lanes) == 0
        for r in _divisors(out_rows, registers(lanes)) for c in _divisors(out_cols, registers(lanes))
        if v * r * c + v + SPARE_REGISTERS <= registers(lanes)
    ]
    return sorted(tiles, key=lambda t: (t.accumulators < MIN_ACCUMULATORS, t.loads_per_fma, -t.accumulators))


def layout_tiles(channels: int, out_rows: int, out_cols: int, lanes: int) -> list[ConvTile]:
    """The tiles of a conv stored in a layout (lowering/conv_layouts.py), best first: those of `conv_tiles`,
    and one-row tiles of any width, which that kernel runs along the image flattened row after row (its
    last tile computing a few pixels past the end, dropped). Its schedule broadcasts each input right
    before the FMAs that use it, so a single register besides the weights suffices. Ranked as
    `conv_tiles`, the loads per FMA weighted by the pixels computed per output pixel."""
    pixels = out_rows * out_cols
    flat = [
        ConvTile(v, 1, c)
        for v in (1, 2, 3, 4) if channels % (v * lanes) == 0
        for c in range(1, min(pixels, registers(lanes)) + 1)
        if v * c + v + 1 <= registers(lanes)
    ]
    tiles = set(flat) | set(conv_tiles(channels, out_rows, out_cols, lanes))

    def cost(tile: ConvTile) -> float:
        computed = -(-pixels // tile.cols) * tile.cols if tile.rows == 1 else pixels
        return computed / pixels * (1 + tile.loads_per_fma)

    return sorted(tiles, key=lambda t: (t.accumulators < MIN_ACCUMULATORS, cost(t), -t.accumulators,
                                        t.vectors, t.rows))


def conv_tile(channels: int, out_rows: int, out_cols: int, lanes: int) -> ConvTile | None:
    """The tile for `channels` output channels (per group) over an out_rows x out_cols image; None if
    the channels do not fill whole vectors."""
    tiles = conv_tiles(channels, out_rows, out_cols, lanes)
    return tiles[0] if tiles else None


def vector_width(channels: int, lanes: int) -> int:
    """Output channels per vector of a conv vectorized over a channel loop of `channels` iterations
    (an NCHWc block, or all of NHWC's channels): a whole register when they fill one, else the
    largest divisor that fits, so that tiles of whole vectors cover the loop exactly."""
    return max(d for d in range(1, min(channels, lanes) + 1) if channels % d == 0)


def winograd_tiles(out_channels: int, block: int, tiles: int, lanes: int) -> list[ConvTile]:
    """The register tiles of the blocked Winograd kernel's GEMM per transform point (lowering/
    conv_algorithms/winograd_nchwc.py), best first: `vectors` output-channel blocks of `block`
    channels x `cols` Winograd tiles (rows 1), ranked as `conv_tiles`."""
    width = vector_width(block, lanes)
    blocks = out_channels // block
    return [t for t in conv_tiles(blocks * width, 1, tiles, width) if blocks % t.vectors == 0]
