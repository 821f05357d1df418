"""The cost model: estimated seconds of one conv candidate on a target, without running it.

    seconds = flops / (peak x efficiency) + bytes / cache bandwidth + weight bytes / memory bandwidth
              + layout transform bytes / transform bandwidth + stages x launch

* `flops` is what the algorithm computes, not the direct conv's count: Winograd F(m,3)
  does its input and output transforms plus an element-wise product of alpha^2 = (m+2)^2
  per tile (16 instead of 36 multiplies per 2x2 tile for F(2,3), 36 instead of 144 per
  4x4 tile for F(4,3)); fft (the TVM kernel does dense DFT matrix products, O(n^2) per
  axis) its forward and inverse transforms plus a complex product per frequency.
* `bytes` is what crosses memory: input, weights and output, and the intermediates an
  algorithm writes and reads back (im2col's unrolled matrix, Winograd's transformed
  tiles, fft's spectra). Their sum, not their max, because those intermediates are
  written by one stage and read by the next.
* `transform bytes`: on a CPU, assign-layouts stores the feature maps around convs that
  can work blocked as NCHW{c}c, so a candidate in another layout is charged for converting
  its input out of and its output back into the blocked layout (each read and written
  once), where the channels allow one. A conv's neighbours are not known here; this
  assumes they are blocked, which they are in the networks the zoo holds.
* `efficiency` is the fraction of the machine's peak our kernel for (algorithm, layout)
  reaches on compute-bound layers: a calibration constant, measured (see CALIBRATION in
  calibration.py); a register tile other than the heuristic's best scales it by the
  loads per FMA it saves or costs, and a 16-bit kernel by what its element type does to
  its rate (vdpbf16ps pairs of bf16 multiply-adds, or operands widened before each FMA).

The peak is derived from the target, not measured, so that the same compile picks the
same kernels on a busy and an idle machine: CPU lanes x 2 FMA pipes x 2 flops x cores x a
nominal clock; the GPU's from its architecture. Only the ranking matters for selection,
and every candidate shares the peak; the seconds are shown by --explain as estimates.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec
from cnncompile.backends.tvm.intermediates import spectrum_dims, winograd_tile_count
from cnncompile.backends.tvm.plan import ConvPlan, Dot, Template, tiles_of
from cnncompile.backends.tvm.tiling import MIN_ACCUMULATORS
from cnncompile.ir.types import LayoutKind, channel_block
from cnncompile.selection.calibration import (
    CPU_EFFICIENCY, CPU_EFFICIENCY_TRANSFORMS, GPU_EFFICIENCY, GPU_EFFICIENCY_TRANSFORMS, PAIR_DOT_SPEEDUP, UNTILED,
    WIDENED_FMA,
)
from cnncompile.selection.candidates import Candidate

if TYPE_CHECKING:
    from cnncompile.backends.tvm.target import TargetSpec

# CPU: a nominal sustained all-core clock, two FMA pipes, the bandwidth of the caches a conv
# layer's working set lives in (L2/L3, a few MB: the depthwise layers measured in
# calibration.py move their tensors at ~100 GB/s on 2 cores), and a parallel-loop start per stage.
CPU_CLOCK_HZ = 3.0e9
CPU_FMA_PIPES = 2
CPU_BANDWIDTH = 100e9
# A LayoutTransform kernel gathers with strides: 15-40 GB/s measured for NCHW <-> NCHW8c on 64x56x56.
CPU_TRANSFORM_BANDWIDTH = 20e9
# Main memory, where the weights come from (a 256 MB copy measured 17 GB/s on one core).
CPU_MEMORY_BANDWIDTH = 20e9
CPU_LAUNCH_SECONDS = 5e-6
# GPU: float32 peak and DRAM bandwidth by compute capability (A100, H100 class), a kernel launch.
GPU_PEAK = {8: 19.5e12, 9: 60e12}
GPU_BANDWIDTH = {8: 1.5e12, 9: 3.0e12}
GPU_LAUNCH_SECONDS = 5e-6


@dataclass(frozen=True)
class Machine:
    """What the model knows of a target: float32 peak FLOP/s, bytes/s, seconds per kernel stage."""

    peak: float
    bandwidth: float
    launch: float
    lanes: int
    is_gpu: bool
    transform_bandwidth: float = CPU_TRANSFORM_BANDWIDTH
    memory_bandwidth: float = CPU_MEMORY_BANDWIDTH

    @classmethod
    def of(cls, target: TargetSpec) -> Machine:
        if target.is_gpu:
            digits = re.match(r"sm_(\d+)", target.arch)
            major = int(digits.group(1)[:-1]) if digits else min(GPU_PEAK)
            known = min(max(major, min(GPU_PEAK)), max(GPU_PEAK))
            return cls(GPU_PEAK[known], GPU_BANDWIDTH[known], GPU_LAUNCH_SECONDS, target.vector_lanes, True,
                       GPU_BANDWIDTH[known], GPU_BANDWIDTH[known])
        lanes = target.vector_lanes
        peak = lanes * CPU_FMA_PIPES * 2 * (os.cpu_count() or 1) * CPU_CLOCK_HZ
        return cls(peak, CPU_BANDWIDTH, CPU_LAUNCH_SECONDS, lanes, False)


@dataclass(frozen=True)
class Work:
    """What one algorithm does for one workload: flops, bytes moved, and its stages (kernels or loops).

    `transform_flops` (part of `flops`) are Winograd's tile transforms: small dense products
    over a few values per tile that run far below the GEMM's rate (calibration.py measures
    them apart). `weight_bytes` (apart from `bytes`) are the weights as the kernel reads
    them (Winograd's transformed tiles: (m+2)^2/9 times the plain ones): read once per
    inference, from memory rather than a cache, as a network's weights outgrow the caches.
    """

    flops: float
    bytes: float
    stages: int
    transform_flops: float = 0.0
    weight_bytes: float = 0.0

    @property
    def intensity(self) -> float:
        """Flops per byte moved: above the machine's peak/bandwidth a kernel is compute-bound."""
        return self.flops / (self.bytes + self.weight_bytes)


@dataclass(frozen=True)
class Estimate:
    candidate: Candidate
    seconds: float
    work: Work
    efficiency: float
    transform_bytes: float

    def as_dict(self) -> dict:
        return {"candidate": str(self.candidate), "seconds": self.seconds, "flops": self.work.flops,
                "bytes": self.work.bytes, "weight_bytes": self.work.weight_bytes, "intensity": self.work.intensity,
                "efficiency": self.efficiency,
                "transform_bytes": self.transform_bytes}


def _tensor_bytes(spec: ConvSpec) -> tuple[float, float, float]:
    """Bytes of the input, the weights and the output."""
    item = spec.dtype.numpy.itemsize
    x = spec.batch * spec.in_channels * math.prod(spec.spatial)
    w = spec.out_channels * (spec.in_channels // spec.group) * math.prod(spec.kernel)
    y = spec.batch * spec.out_channels * math.prod(spec.out)
    return x * item, w * item, y * item


def work(plan: ConvPlan, lanes: int = 8) -> Work:
    """Flops, bytes and stages of the plan's kernel; its intermediates (the plan's workspace) are written by
    one stage and read by the next. `lanes` is the SIMD width the fft kernel rounds its half spectrum up to."""
    spec, algorithm = plan.spec, plan.algorithm
    x, w, y = _tensor_bytes(spec)
    io = x + y + 2 * plan.workspace
    if algorithm.winograd_tile:
        return _winograd(spec, algorithm.winograd_tile, io)
    if algorithm is ConvAlgorithm.FFT:
        return _fft(spec, io, spec.dtype.numpy.itemsize, lanes)
    return Work(2.0 * spec.macs, io, 2 if algorithm is ConvAlgorithm.IM2COL_GEMM else 1, weight_bytes=w)


def _winograd(spec: ConvSpec, m: int, io_bytes: float) -> Work:
    """F(m,3) with alpha = m + 2: per tile and channel B^T d B (two alpha^3 products), per tile and
    output channel A^T M A, and alpha^2 GEMMs of (tiles x C) by (C x K) in between. The weight
    transform runs at compile time."""
    alpha = m + 2
    tiles = winograd_tile_count(spec, m)
    c, k = spec.in_channels, spec.out_channels
    input_transform = 4.0 * alpha ** 3 * tiles * c
    product = 2.0 * alpha ** 2 * tiles * c * k
    output_transform = (2.0 * m * alpha * alpha + 2.0 * m * m * alpha) * tiles * k
    weights = alpha ** 2 * c * k * spec.dtype.numpy.itemsize
    transforms = input_transform + output_transform
    return Work(transforms + product, io_bytes, 3, transforms, weights)


def _fft(spec: ConvSpec, io_bytes: float, item: int, lanes: int) -> Work:
    """The TVM kernel's dense DFTs (lowering/conv_algorithms/fft.py): over the padded input's lengths L,
    the last axis real-to-half-spectrum (`plan.spectrum_dims`), the others complex, each a GEMM-shaped
    reduction over one axis (2 flops per multiply-add); N x C forward, N x K inverse (only at the kept
    output positions); in between a complex multiply-add (8 flops) per frequency, output channel and
    input channel of the group."""
    lengths = [s + b + e for s, b, e in zip(spec.spatial, spec.pads_begin, spec.pads_end)]
    last = len(lengths) - 1
    stored = spectrum_dims(spec, lanes)[-1]
    dims, parts, flops = list(lengths), 1, 0.0
    for axis in (last, *reversed(range(last))):
        reduced = dims[axis] * parts
        dims[axis], parts = stored if axis == last else lengths[axis], 2
        flops += 2.0 * spec.batch * spec.in_channels * parts * math.prod(dims) * reduced
    points = math.prod(dims)
    flops += 8.0 * spec.batch * spec.out_channels * points * (spec.in_channels // spec.group)
    for axis in (*range(last), last):
        reduced = dims[axis] * parts
        dims[axis], parts = spec.out[axis], 1 if axis == last else 2
        flops += 2.0 * spec.batch * spec.out_channels * parts * math.prod(dims) * reduced
    weights = points * spec.out_channels * (spec.in_channels // spec.group) * 2 * item
    return Work(flops, io_bytes, 2 * len(lengths) + 1, weight_bytes=weights)


def _tile_factor(plan: ConvPlan, target: TargetSpec) -> float:
    """How a chosen tile fares against the plan's default: its loads per FMA, and too few accumulators."""
    if not plan.request.tile or plan.tile is None:
        return 1.0
    best = tiles_of(plan, target)
    tile = plan.tile
    factor = (1 + best[0].loads_per_fma) / (1 + tile.loads_per_fma) if best else 1.0
    return min(factor, 1.0) * (0.7 if tile.accumulators < MIN_ACCUMULATORS else 1.0)


def efficiency(plan: ConvPlan, machine: Machine, target: TargetSpec) -> float:
    """The fraction of peak the plan's kernel reaches (calibration.py says where each number comes from).

    A direct conv whose template is the depthwise kernel's (a depthwise workload: in NCHW the
    DIRECT template, in a channels-inner layout the same per-channel loop nest) measures as
    `depthwise` and is costed as it; an NCHW direct conv the plan leaves untiled (the DIRECT
    template otherwise: weights at run time, channels that fill no vector) runs at UNTILED of
    the tiled kernel's rate.
    """
    kind = LayoutKind.NCHW if plan.layout is None else plan.layout.kind
    if machine.is_gpu:
        return GPU_EFFICIENCY[plan.algorithm]
    spec, algorithm = plan.spec, plan.algorithm
    depthwise = spec.group == spec.in_channels > 1
    if algorithm is ConvAlgorithm.DIRECT and depthwise and (kind is not LayoutKind.NCHW or plan.template is Template.DIRECT):
        algorithm = ConvAlgorithm.DEPTHWISE
    base = CPU_EFFICIENCY[algorithm, kind]
    if algorithm is ConvAlgorithm.DIRECT and kind is LayoutKind.NCHW and plan.template is Template.DIRECT:
        base *= UNTILED
    return base * _tile_factor(plan, target) * _element_factor(plan)


def _element_factor(plan: ConvPlan) -> float:
    """A 16-bit kernel's rate against float32's: vdpbf16ps pairs, or operands widened before each FMA."""
    if plan.dot is Dot.BF16_PAIRS:
        return PAIR_DOT_SPEEDUP
    return WIDENED_FMA if plan.types.input.is_reduced else 1.0


def transform_bytes(plan: ConvPlan, machine: Machine) -> float:
    """Bytes of converting X from, and Y back to, the blocked layout its neighbours are stored in (CPU)."""
    spec = plan.spec
    if machine.is_gpu or len(spec.spatial) != 2 or (plan.layout is not None and plan.layout.kind is LayoutKind.NCHWC):
        return 0.0
    x, _, y = _tensor_bytes(spec)
    blocked_in = channel_block((spec.in_channels,), machine.lanes) is not None
    blocked_out = channel_block((spec.out_channels,), machine.lanes) is not None
    return 2 * (x * blocked_in + y * blocked_out)


def estimate(candidate: Candidate, plan: ConvPlan, target: TargetSpec) -> Estimate:
    """The model's seconds for the kernel `plan` (the backend's for `candidate`) on `target`."""
    machine = Machine.of(target)
    done = work(plan, machine.lanes)
    eff = efficiency(plan, machine, target)
    moved = transform_bytes(plan, machine)
    compute = (done.flops - done.transform_flops) / (machine.peak * eff)
    if done.transform_flops:
        compute += done.transform_flops / (machine.peak * transform_efficiency(plan, machine))
    seconds = compute + done.bytes / machine.bandwidth + done.weight_bytes / machine.memory_bandwidth \
        + moved / machine.transform_bandwidth + done.stages * machine.launch
    return Estimate(candidate, seconds, done, eff, moved)


def transform_efficiency(plan: ConvPlan, machine: Machine) -> float:
    """The fraction of peak Winograd's tile transforms reach: vectorized over tiles in NCHW, over a
    channel block in NCHWc."""
    if machine.is_gpu:
        return GPU_EFFICIENCY_TRANSFORMS
    return CPU_EFFICIENCY_TRANSFORMS[LayoutKind.NCHW if plan.layout is None else plan.layout.kind]
