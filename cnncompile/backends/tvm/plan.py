"""One kernel plan per conv node and target: every fact about the kernel a conv becomes, decided here.

    plan = plan_conv(ConvRequest(spec, algorithm, source, layout, tile, weights_constant), target)

answers, in the spirit of Relay's OpStrategy, what the backend builds: the algorithm, the
storage layout of X and Y, the schedule `Template`, how the weights reach the kernel
(`WeightForm`: as given, or repacked or transformed at build time), the register tile of a
CPU template (the tuned one when the request names one, checked, else the template's
best), whether a stored conv runs over flattened pixels, the element types, and the
workspace its intermediates take. The lowering builds the kernel from the plan, the
schedules read its template and tile, and selection (candidates, cost model, tuner,
`--explain`) asks it what a candidate would build, so none of them restates a rule. A
request the backend cannot build raises a `PlanError` saying why; `plan_or_reason` gives
that reason to selection, which then does not offer the candidate.

The templates:

    DIRECT            NCHW, per output channel rows x a vector of columns (depthwise convs,
                      groups that split a channel block, weights given at run time, GPUs)
    DIRECT_BLOCKED    NCHW, a register tile of output-channel vectors x rows x cols over
                      weights packed in blocks of output channels (CPU, constant weights)
    DIRECT_STORED     Y stored NCHWc or NHWC, output channels innermost: the register tile is
                      in Y's order and the epilogue stores it as it is
    GEMM              gemm_1x1 and im2col_gemm in NCHW: (output channels x pixels) per group
    WINOGRAD          F(m, 3) in NCHW, its transforms vectorized over tiles
    WINOGRAD_BLOCKED  F(m, 3) in NCHWc, its transforms vectorized over channel blocks
    FFT               DFTs per axis around a complex product with the kernel's spectrum
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec
from cnncompile.backends.tvm.intermediates import spectrum_dims, winograd_columns, winograd_tile_count
from cnncompile.backends.tvm.tiling import (
    SPARE_REGISTERS, ConvTile, conv_tiles, layout_tiles, registers, vector_width, winograd_tiles,
)
from cnncompile.errors import AttrError
from cnncompile.ir.types import DType, Layout, LayoutKind

if TYPE_CHECKING:
    from cnncompile.backends.tvm.target import TargetSpec

# float32 lanes of a vdpbf16ps accumulator (AVX-512).
BF16_LANES = 16
# A depthwise tile's accumulators: one input load per FMA leaves registers for this many.
DEPTHWISE_ACCUMULATORS = 12
# Output columns a depthwise tile spans at most: consecutive columns share input vectors across taps.
DEPTHWISE_COLUMNS = 8


class PlanError(AttrError):
    """The backend has no kernel for the request: a tile that does not fit, weights it cannot transform."""


class Template(enum.Enum):
    """The schedule template a conv kernel is built for (see the module docstring)."""

    DIRECT = "direct"
    DIRECT_BLOCKED = "direct_blocked"
    DIRECT_STORED = "direct_stored"
    GEMM = "gemm"
    WINOGRAD = "winograd"
    WINOGRAD_BLOCKED = "winograd_blocked"
    FFT = "fft"


class WeightForm(enum.Enum):
    """The order the kernel reads its weights in (O output channels, C/G input channels per group, k taps)."""

    AS_GIVEN = "(O, C/G, *k)"
    OUTPUT_BLOCKS = "(O/B, C/G, *k, B)"
    NCHWC_BLOCKS = "(O/ob, C/G/ib, kh, kw, ib, ob)"
    NCHWC_PAIRS = "(O/ob, C/G/ib, kh, kw, ib/2, ob, 2)"
    NHWC = "(kh, kw, C/G, O)"
    DEPTHWISE_NCHWC = "(O/ob, kh, kw, ob)"
    DEPTHWISE_NHWC = "(kh, kw, O)"
    GEMM_MATRIX = "(G, C/G * taps, O/G)"
    WINOGRAD = "G g G^T as (a, a, C, O)"
    WINOGRAD_BLOCKED = "G g G^T as (a, a, O/ob, C/ib, ib, ob)"
    SPECTRUM = "the kernel's spectrum"

    @property
    def transformed(self) -> bool:
        """Whether the form is computed from the weights (not a reordering), so only at build time."""
        return self in (WeightForm.WINOGRAD, WeightForm.WINOGRAD_BLOCKED, WeightForm.SPECTRUM)


@dataclass(frozen=True)
class ElementTypes:
    """The element types a kernel reads, accumulates in and writes."""

    input: DType
    weight: DType
    accumulator: DType
    output: DType

    @classmethod
    def of(cls, dtype: DType) -> ElementTypes:
        """A conv over `dtype` operands: stored in `dtype`, accumulated in `dtype.accumulator` (float32 for the
        16-bit floats, whose products it holds exactly)."""
        return cls(dtype, dtype, dtype.accumulator, dtype)


class Dot(enum.Enum):
    """The instruction a CPU kernel's reduction step multiplies with."""

    FMA = "fma"                    # one multiply-add per accumulator lane
    BF16_PAIRS = "vdpbf16ps"       # AVX512_BF16: a pair of bf16 input channels per float32 lane


@dataclass(frozen=True)
class ConvRequest:
    """What a node (or a candidate) asks of the backend: the workload and how to compute it.

    `source` and `layout` are X's and Y's storage (None: NCHW); `tile` the tuned register
    tile (vectors, rows, cols), empty for the template's own.
    """

    spec: ConvSpec
    algorithm: ConvAlgorithm = ConvAlgorithm.DIRECT
    source: Layout | None = None
    layout: Layout | None = None
    tile: tuple[int, ...] = ()
    weights_constant: bool = True


@dataclass(frozen=True)
class ConvPlan:
    """The kernel a conv becomes on a target; see the module docstring."""

    request: ConvRequest
    template: Template
    weights: WeightForm
    tile: ConvTile | None
    flat: bool
    types: ElementTypes
    workspace: int
    dot: Dot = Dot.FMA

    @property
    def spec(self) -> ConvSpec:
        return self.request.spec

    @property
    def algorithm(self) -> ConvAlgorithm:
        return self.request.algorithm

    @property
    def source(self) -> Layout | None:
        return self.request.source

    @property
    def layout(self) -> Layout | None:
        return self.request.layout

    @property
    def packed_at_build_time(self) -> bool:
        """Whether the kernel takes its weights repacked (or transformed) at build time."""
        return self.weights is not WeightForm.AS_GIVEN and self.request.weights_constant

    def describe(self) -> str:
        """The plan in the candidates' text form (algorithm/layout[/tile]; no tile: the template's own, as a
        candidate without one means): what --explain says was built."""
        text = f"{self.algorithm.value}/{self.layout or 'NCHW'}"
        return text + (f"/t{'x'.join(map(str, self.request.tile))}" if self.request.tile else "")

    def as_dict(self) -> dict:
        tile = None if self.tile is None else [self.tile.vectors, self.tile.rows, self.tile.cols]
        return {"kernel": self.describe(), "template": self.template.value, "tile": tile, "weights": self.weights.value,
                "build_time_weights": self.packed_at_build_time, "flat": self.flat,
                "types": {k: getattr(self.types, k).value for k in ("input", "weight", "accumulator", "output")},
                "dot": self.dot.value, "workspace_bytes": self.workspace}


# -- the plan ---------------------------------------------------------------------------------

def plan_conv(request: ConvRequest, target: TargetSpec) -> ConvPlan:
    """The kernel `request` becomes on `target`; a PlanError when the backend builds none."""
    spec, algorithm = request.spec, request.algorithm
    lanes = None if target.is_gpu else target.vector_lanes
    template, weights = _template(request, lanes)
    if weights.transformed and not request.weights_constant:
        raise PlanError(f"{algorithm.value} transforms the weights at build time, so they must be a graph "
                        "constant; these arrive at run time")
    if template is Template.WINOGRAD_BLOCKED and lanes is None:
        raise PlanError("Winograd on blocked feature maps is a CPU kernel; on a GPU, keep the conv in NCHW")
    options = tile_options(template, request, lanes)
    tile = _requested(request, template, options, lanes) if request.tile else (options[0] if options else None)
    flat = template is Template.DIRECT_STORED and tile is not None and tile.rows == 1 and not _depthwise(spec)
    dot = _dot(request, weights, target)
    return ConvPlan(request, template, WeightForm.NCHWC_PAIRS if dot is Dot.BF16_PAIRS else weights, tile, flat,
                    ElementTypes.of(spec.dtype), _workspace(template, request, lanes), dot)


def _dot(request: ConvRequest, weights: WeightForm, target: TargetSpec) -> Dot:
    """vdpbf16ps where a bf16 conv reads NCHWc blocks of an even number of input channels (the pairs) and
    writes whole 16-lane vectors of output channels, with its weights packed at build time; else FMAs."""
    source, layout = request.source, request.layout
    pairs = weights is WeightForm.NCHWC_BLOCKS and request.spec.dtype is DType.BFLOAT16 and target.bf16_pairs \
        and request.weights_constant and source is not None and source.kind is LayoutKind.NCHWC \
        and source.block % 2 == 0 and (request.spec.in_channels // request.spec.group) % source.block == 0 \
        and layout.block % BF16_LANES == 0
    return Dot.BF16_PAIRS if pairs else Dot.FMA


def plan_or_reason(request: ConvRequest, target: TargetSpec) -> ConvPlan | str:
    """The plan, or why the backend builds none (for selection, which then leaves the candidate out)."""
    try:
        return plan_conv(request, target)
    except PlanError as err:
        return str(err)


def _depthwise(spec: ConvSpec) -> bool:
    """One input and one output channel per group: no channel reduction."""
    return spec.in_channels // spec.group == 1 and spec.out_channels // spec.group == 1


def _splits_blocks(spec: ConvSpec, layout: Layout) -> bool:
    """A grouped conv whose groups split an NCHWc block: the block's lanes would read different input blocks."""
    return layout.kind is LayoutKind.NCHWC and not _depthwise(spec) and spec.group > 1 \
        and (spec.out_channels // spec.group) % layout.block != 0


def _template(request: ConvRequest, lanes: int | None) -> tuple[Template, WeightForm]:
    spec, algorithm, layout = request.spec, request.algorithm, request.layout
    constant = request.weights_constant
    if algorithm.winograd_tile:
        return (Template.WINOGRAD, WeightForm.WINOGRAD) if layout is None \
            else (Template.WINOGRAD_BLOCKED, WeightForm.WINOGRAD_BLOCKED)
    if algorithm is ConvAlgorithm.FFT:
        return Template.FFT, WeightForm.SPECTRUM
    if layout is not None:
        if _splits_blocks(spec, layout):
            return Template.DIRECT, WeightForm.AS_GIVEN
        if layout.kind is LayoutKind.NHWC:
            return Template.DIRECT_STORED, WeightForm.DEPTHWISE_NHWC if _depthwise(spec) else WeightForm.NHWC
        return Template.DIRECT_STORED, WeightForm.DEPTHWISE_NCHWC if _depthwise(spec) else WeightForm.NCHWC_BLOCKS
    if algorithm in (ConvAlgorithm.GEMM_1X1, ConvAlgorithm.IM2COL_GEMM):
        return Template.GEMM, WeightForm.GEMM_MATRIX if constant else WeightForm.AS_GIVEN
    # direct or depthwise in NCHW: a channel vector of a depthwise conv would need a gather
    blocked = algorithm is ConvAlgorithm.DIRECT and lanes is not None and constant \
        and spec.in_channels // spec.group > 1 and conv_tiles(spec.out_channels // spec.group, *_image(spec), lanes)
    return (Template.DIRECT_BLOCKED, WeightForm.OUTPUT_BLOCKS) if blocked else (Template.DIRECT, WeightForm.AS_GIVEN)


def _image(spec: ConvSpec) -> tuple[int, int]:
    """The output's (rows, cols) as register tiles see it: a 1-D conv has one row."""
    return (spec.out[-2] if len(spec.out) > 1 else 1), spec.out[-1]


# -- tiles ------------------------------------------------------------------------------------

def tile_options(template: Template, request: ConvRequest, lanes: int | None) -> list[ConvTile]:
    """Every register tile the template builds for the request, its best first (the default); empty for
    the templates without one and on GPUs. Tuning measures the first few."""
    spec = request.spec
    if lanes is None or template in (Template.DIRECT, Template.FFT):
        return []
    rows, cols = _image(spec)
    group_out = spec.out_channels // spec.group
    if template is Template.DIRECT_BLOCKED:
        return conv_tiles(group_out, rows, cols, lanes)
    if template is Template.GEMM:
        return _gemm_tiles(math.prod(spec.out), group_out, lanes)
    if template is Template.WINOGRAD:
        return _gemm_tiles(winograd_columns(spec, request.algorithm.winograd_tile, lanes), spec.out_channels, lanes)
    if template is Template.WINOGRAD_BLOCKED:
        count = winograd_tile_count(spec, request.algorithm.winograd_tile)
        return winograd_tiles(spec.out_channels, request.layout.block, count, lanes)
    return _stored_tiles(spec, request.layout, lanes)


# The templates whose runners-up tiles tuning measures: the register tiles of the kernels a CPU build
# runs most (blocked and stored direct convs, blocked Winograd). The NCHW GEMM-shaped kernels keep their
# default, which vectorizes along pixels or Winograd tiles and is rarely chosen where a blocked one applies.
TUNED_TEMPLATES = frozenset({Template.DIRECT_BLOCKED, Template.DIRECT_STORED, Template.WINOGRAD_BLOCKED})


def tiles_of(plan: ConvPlan, target: TargetSpec) -> list[ConvTile]:
    """Every register tile the plan's template builds for its workload, the default first (`tile_options`)."""
    return tile_options(plan.template, plan.request, None if target.is_gpu else target.vector_lanes)


def _gemm_tiles(columns: int, rows: int, lanes: int) -> list[ConvTile]:
    """A GEMM's tiles (vectors of columns, 1, rows per tile); empty when the columns fill no vector, where
    the schedule takes one vector's worth of columns (schedule/cpu_algorithms.py)."""
    return conv_tiles(columns, 1, rows, lanes)


def _channel_loop(spec: ConvSpec, layout: Layout) -> tuple[int, int]:
    """A stored conv's (vectorized channel loop's extent, the channels a tile's vectors must divide)."""
    if layout.kind is LayoutKind.NHWC:
        return spec.out_channels, spec.out_channels
    grouped = spec.group > 1 and not _depthwise(spec)
    return layout.block, spec.out_channels // spec.group if grouped else spec.out_channels


def _stored_tiles(spec: ConvSpec, layout: Layout, lanes: int) -> list[ConvTile]:
    inner, channels = _channel_loop(spec, layout)
    width = vector_width(inner, lanes)
    rows, cols = _image(spec)
    if _depthwise(spec):
        return [_depthwise_tile(max(inner // width, 1) if layout.kind is LayoutKind.NCHWC else 1, rows, cols)]
    return [t for t in layout_tiles(channels, rows, cols, width) if _stored_misfit(t, spec, layout, lanes) is None]


def _stored_misfit(tile: ConvTile, spec: ConvSpec, layout: Layout, lanes: int) -> str | None:
    """None when `tile` covers a stored conv's channels with whole vectors and its output with whole tiles
    (a flat tile's columns need only fit in the image), else why not."""
    inner, channels = _channel_loop(spec, layout)
    span = tile.vectors * vector_width(inner, lanes)
    rows, cols = _image(spec)
    if channels % span or (span % inner and inner % span):
        return f"{tile.vectors} vectors span {span} channels, which must divide {channels} and fit blocks of {inner}"
    if tile.rows == 1 and not _depthwise(spec):
        return None if tile.cols <= rows * cols else f"{tile.cols} columns exceed the {rows}x{cols} output"
    if rows % tile.rows or cols % tile.cols:
        return f"{tile.rows} rows x {tile.cols} columns do not divide the {rows}x{cols} output"
    return None


def _depthwise_tile(vectors: int, rows: int, cols: int) -> ConvTile:
    """A strip of up to DEPTHWISE_COLUMNS columns, and as many rows as the accumulators allow."""
    columns = max(d for d in range(1, min(cols, DEPTHWISE_COLUMNS) + 1) if cols % d == 0)
    budget = max(DEPTHWISE_ACCUMULATORS // (vectors * columns), 1)
    return ConvTile(vectors, max(d for d in range(1, min(rows, budget) + 1) if rows % d == 0), columns)


def _requested(request: ConvRequest, template: Template, options: list[ConvTile], lanes: int | None) -> ConvTile:
    """The tuned tile of the request, checked against what the template builds."""
    chosen = request.tile
    if len(chosen) != 3 or min(chosen) < 1:
        raise PlanError(f"tile {list(chosen)} must be three positive numbers (vectors, rows, cols)")
    if lanes is None:
        raise PlanError(f"tile {list(chosen)}: (vectors, rows, cols) register tiles are for CPU kernels")
    if template in (Template.DIRECT, Template.FFT):
        raise PlanError(f"tile {list(chosen)}: {request.algorithm.value} kernels take no tuned register tile "
                        f"here (template {template.value})")
    tile = ConvTile(*chosen)
    if tile in options:
        return tile
    if template is Template.DIRECT_STORED and not _depthwise(request.spec):
        reason = _stored_misfit(tile, request.spec, request.layout, lanes)
        if reason is None and tile.accumulators + tile.vectors + 1 <= registers(lanes):
            return tile
        raise PlanError(f"tile {list(chosen)} does not fit the conv: "
                        f"{reason or 'its accumulators and weight vectors need more than the registers'}")
    raise PlanError(f"tile {list(chosen)} does not fit this conv's {template.value} kernel: "
                    f"{_misfit(tile, template, request, lanes)}")


def _misfit(tile: ConvTile, template: Template, request: ConvRequest, lanes: int) -> str:
    """Why a tile is not among the template's: what it must divide, or the registers it would need."""
    spec = request.spec
    if template is Template.WINOGRAD_BLOCKED:
        blocks = spec.out_channels // request.layout.block
        count = winograd_tile_count(spec, request.algorithm.winograd_tile)
        return (f"this Winograd GEMM takes (vectors dividing {blocks} channel blocks, 1, columns dividing "
                f"{count} tiles) within the registers")
    rows, cols = _image(spec)
    extents = {
        Template.DIRECT_BLOCKED: (spec.out_channels // spec.group, rows, cols),
        Template.GEMM: (math.prod(spec.out), 1, spec.out_channels // spec.group),
        Template.WINOGRAD: (winograd_columns(spec, request.algorithm.winograd_tile or 2, lanes), 1,
                            spec.out_channels),
    }.get(template, (spec.out_channels, rows, cols))
    vectorized, tiled_rows, tiled_cols = extents
    problems = []
    if vectorized % (tile.vectors * lanes):
        problems.append(f"{tile.vectors} vectors of {lanes} lanes do not divide {vectorized}")
    if tiled_rows % tile.rows:
        problems.append(f"{tile.rows} rows do not divide {tiled_rows}")
    if tiled_cols % tile.cols:
        problems.append(f"{tile.cols} columns do not divide {tiled_cols}")
    if tile.accumulators + tile.vectors + SPARE_REGISTERS > registers(lanes) or tile.vectors > 4:
        problems.append(f"{tile.accumulators} accumulators and {tile.vectors} weight vectors exceed the "
                        f"{registers(lanes)} registers (at most 4 vectors, {SPARE_REGISTERS} registers spare)")
    return "; ".join(problems) or "it is not among the tiles the template builds"


# -- workspace --------------------------------------------------------------------------------

def _workspace(template: Template, request: ConvRequest, lanes: int | None) -> int:
    """Bytes of the intermediates the kernel writes and reads back: im2col's matrix, Winograd's transformed
    tiles (V and M), the FFT's spectra; none for the direct and 1x1 kernels."""
    spec = request.spec
    item = spec.dtype.itemsize
    if template is Template.GEMM and request.algorithm is ConvAlgorithm.IM2COL_GEMM:
        return spec.batch * spec.in_channels * math.prod(spec.kernel) * math.prod(spec.out) * item
    if template in (Template.WINOGRAD, Template.WINOGRAD_BLOCKED):
        m = request.algorithm.winograd_tile
        columns = winograd_columns(spec, m, lanes) if template is Template.WINOGRAD else winograd_tile_count(spec, m)
        return (m + 2) ** 2 * columns * (spec.in_channels + spec.out_channels) * item
    if template is Template.FFT:
        return math.prod(spectrum_dims(spec, lanes)) * spec.batch * (spec.in_channels + spec.out_channels) * 2 * item
    return 0
