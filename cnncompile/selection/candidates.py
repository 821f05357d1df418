"""The ways one convolution may be computed on a target: (algorithm, layout, register tile).

A candidate is what the cost model estimates, what tuning measures and what the tuning
cache stores, so it has a stable text form that reads back:

    winograd_f4x3/NCHW       direct/NCHW8c/t1x2x4       gemm_1x1/NHWC

`t{vectors}x{rows}x{cols}` is a register tile (backends/tvm/tiling.py: `vectors` SIMD
registers of output channels by rows x cols output pixels); no tile means the plan's own
(backends/tvm/plan.py: the best its template builds), which is what the cost model assumes.
Which kernels take a tile, and which tiles, is the plan's to say (`plan.tiles_of`).

On a CPU, each algorithm is offered in NCHW and in the other layouts its kernels store
feature maps in (`applicability.layout_kinds`: NHWC for direct, depthwise and gemm_1x1, one
blocked NCHW{c}c for those and Winograd), the block being the largest of lanes, lanes/2,
... (down to 4) that divides both the input and the output channels, so that the vector
lane is the channel block. CUDA kernels here are NCHW only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec, applicable, layout_kinds
from cnncompile.backends.tvm.plan import TUNED_TEMPLATES, ConvPlan, ConvRequest, plan_or_reason, tiles_of
from cnncompile.backends.tvm.tiling import ConvTile
from cnncompile.errors import CnnCompileError
from cnncompile.ir.types import NCHW, NHWC, Layout, LayoutKind, canonical_layout, channel_block, nchwc
from cnncompile.ops.fused import FusedConvAttrs

if TYPE_CHECKING:
    from cnncompile.backends.tvm.target import TargetSpec

# How many of the plan's next-best tiles a candidate list offers besides the default: enough for
# tuning to find a better one where the heuristic misjudges, few enough to measure quickly.
TILES_PER_LAYOUT = 3


@dataclass(frozen=True)
class Candidate:
    """One way to compute a conv. `layout` None is NCHW (the logical order, as IR types write it)."""

    algorithm: ConvAlgorithm
    layout: Layout | None = None
    tile: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", canonical_layout(self.layout))
        object.__setattr__(self, "tile", tuple(int(t) for t in self.tile))

    def __str__(self) -> str:
        text = f"{self.algorithm.value}/{self.layout or NCHW}"
        return text + (f"/t{'x'.join(map(str, self.tile))}" if self.tile else "")

    @classmethod
    def parse(cls, text: str) -> Candidate:
        """The candidate written as `str(candidate)`."""
        algorithm, _, rest = text.strip().partition("/")
        layout_text, _, tile_text = rest.partition("/")
        try:
            algo = ConvAlgorithm(algorithm)
        except ValueError:
            raise CnnCompileError(f"'{text}': unknown conv algorithm '{algorithm}'; one of "
                                  f"{', '.join(a.value for a in ConvAlgorithm)}") from None
        tile = re.fullmatch(r"t(\d+(?:x\d+)*)", tile_text) if tile_text else None
        if tile_text and tile is None:
            raise CnnCompileError(f"'{text}': a tile is written t{{vectors}}x{{rows}}x{{cols}}, e.g. t1x2x4")
        return cls(algo, parse_layout(layout_text or "NCHW", text),
                   tuple(int(t) for t in tile.group(1).split("x")) if tile else ())


def parse_layout(text: str, where: str = "") -> Layout | None:
    """NCHW (None), NHWC or NCHW{c}c."""
    if text == "NCHW":
        return None
    if text == "NHWC":
        return NHWC
    blocked = re.fullmatch(r"NCHW(\d+)c", text)
    if blocked is None or int(blocked.group(1)) < 1:
        raise CnnCompileError(f"'{where or text}': unknown layout '{text}'; NCHW, NHWC or NCHW{{c}}c (e.g. NCHW8c)")
    return nchwc(int(blocked.group(1)))


def layouts(algorithm: ConvAlgorithm, spec: ConvSpec, target: TargetSpec) -> list[Layout | None]:
    """The layouts `algorithm` may produce `spec`'s output in on `target`, NCHW first.

    Grouped convs other than depthwise stay in NCHW: a channel block would straddle groups. A
    conv whose input channels take no block reads X in NCHW and may still write blocked, as
    assign-layouts lays out a network's first conv.
    """
    kinds = layout_kinds(algorithm)
    if target.is_gpu or not kinds or len(spec.spatial) != 2:
        return [None]
    if spec.group != 1 and not (spec.group == spec.in_channels == spec.out_channels):
        return [None]
    found: list[Layout | None] = [None, *([NHWC] if LayoutKind.NHWC in kinds else [])]
    lanes = target.vector_lanes
    block = channel_block((spec.in_channels, spec.out_channels), lanes)
    if block is None and channel_block((spec.in_channels,), lanes) is None:
        block = channel_block((spec.out_channels,), lanes)  # X stays NCHW (an image's 3 channels), as laid out
    if block is not None and LayoutKind.NCHWC in kinds:
        found.append(nchwc(block))
    return found


def plan_of(candidate: Candidate, spec: ConvSpec, target: TargetSpec, source: Layout | None = None,
            weights_constant: bool = True) -> ConvPlan | str:
    """The kernel the backend builds for `candidate` (X stored in `source`), or why it builds none."""
    return plan_or_reason(ConvRequest(spec, candidate.algorithm, source, candidate.layout, candidate.tile,
                                      weights_constant), target)


def tiles(algorithm: ConvAlgorithm, layout: Layout | None, spec: ConvSpec, target: TargetSpec) -> list[ConvTile]:
    """The runners-up register tiles of the kernel `algorithm` builds in `layout`: the plan's next best.

    Only the plan's TUNED_TEMPLATES offer them. The best tile is what the default (no tile)
    builds already, so it is not offered twice: tuning would measure the same kernel twice.
    """
    plan = plan_of(Candidate(algorithm, layout), spec, target)
    if isinstance(plan, str) or plan.template not in TUNED_TEMPLATES:
        return []
    return tiles_of(plan, target)[1:1 + TILES_PER_LAYOUT]


def candidates(spec: ConvSpec, target: TargetSpec) -> list[Candidate]:
    """Every candidate for `spec` on `target`: applicable algorithms x their layouts x (default + a few tiles)."""
    return [c for algorithm in applicable(spec) for layout in layouts(algorithm, spec, target)
            for c in _tiled(algorithm, layout, spec, target)]


def candidates_in(layout: Layout | None, spec: ConvSpec, target: TargetSpec) -> list[Candidate]:
    """The candidates for `spec` that write Y in `layout` (the one assign-layouts gave a conv, whose block
    follows Y's channels alone): each applicable algorithm whose kernels store it, with its tiles."""
    return [c for algorithm in applicable(spec)
            if layout is None or (layout.kind in layout_kinds(algorithm) and not target.is_gpu)
            for c in _tiled(algorithm, layout, spec, target)]


def _tiled(algorithm: ConvAlgorithm, layout: Layout | None, spec: ConvSpec, target: TargetSpec) -> list[Candidate]:
    """The algorithm in the layout with the plan's own tile, then with its runners-up."""
    return [Candidate(algorithm, layout),
            *(Candidate(algorithm, layout, (t.vectors, t.rows, t.cols)) for t in tiles(algorithm, layout, spec, target))]


def apply_candidate(attrs: FusedConvAttrs, candidate: Candidate) -> FusedConvAttrs:
    """`attrs` computing by `candidate`; FusedConv's shape rule checks it applies when the node is built."""
    return replace(attrs, algorithm=candidate.algorithm, layout=candidate.layout, tile=candidate.tile)


def of_attrs(attrs: FusedConvAttrs) -> Candidate:
    """The candidate a FusedConv's attributes compute by."""
    return Candidate(attrs.algorithm, attrs.layout, attrs.tile)
