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
  loads per FMA it saves or costs.

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
from cnncompile.algorithms.winograd import tile_grid
from cnncompile.backends.tvm.tiling import MIN_ACCUMULATORS, ConvTile, conv_tiles, winograd_tiles
from cnncompile.ir.types import LayoutKind, channel_block
from cnncompile.selection.calibration import (
    CPU_EFFICIENCY, CPU_EFFICIENCY_TRANSFORMS, GPU_EFFICIENCY, GPU_EFFICIENCY_TRANSFORMS, UNTILED,
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


def work(algorithm: ConvAlgorithm, spec: ConvSpec, lanes: int = 8) -> Work:
    """Flops, bytes and stages of `algorithm` on `spec` (which it must apply to); `lanes` is the
    SIMD width the fft kernel rounds its half spectrum up to."""
    x, w, y = _tensor_bytes(spec)
    item = spec.dtype.numpy.itemsize
    direct = 2.0 * spec.macs
    if algorithm in (ConvAlgorithm.DIRECT, ConvAlgorithm.DEPTHWISE, ConvAlgorithm.GEMM_1X1):
        return Work(direct, x + y, 1, weight_bytes=w)
    if algorithm is ConvAlgorithm.IM2COL_GEMM:
        unrolled = spec.batch * spec.in_channels * math.prod(spec.kernel) * math.prod(spec.out) * item
        return Work(direct, x + y + 2 * unrolled, 2, weight_bytes=w)
    if algorithm.winograd_tile:
        return _winograd(spec, algorithm.winograd_tile, x + y, item)
    if algorithm is ConvAlgorithm.FFT:
        return _fft(spec, x + y, item, lanes)
    raise ValueError(f"no cost rule for {algorithm}")


def _winograd(spec: ConvSpec, m: int, io_bytes: float, item: int) -> Work:
    """F(m,3) with alpha = m + 2: per tile and channel B^T d B (two alpha^3 products), per tile and
    output channel A^T M A, and alpha^2 GEMMs of (tiles x C) by (C x K) in between. The weight
    transform runs at compile time."""
    alpha = m + 2
    tiles = spec.batch * math.prod(tile_grid(spec.out, m))
    c, k = spec.in_channels, spec.out_channels
    input_transform = 4.0 * alpha ** 3 * tiles * c
    product = 2.0 * alpha ** 2 * tiles * c * k
    output_transform = (2.0 * m * alpha * alpha + 2.0 * m * m * alpha) * tiles * k
    transformed = alpha ** 2 * (tiles * c + tiles * k) * item  # written by one stage, read by the next
    weights = alpha ** 2 * c * k * item
    transforms = input_transform + output_transform
    return Work(transforms + product, io_bytes + 2 * transformed, 3, transforms, weights)


def _fft(spec: ConvSpec, io_bytes: float, item: int, lanes: int) -> Work:
    """The TVM kernel's dense DFTs (lowering/conv_algorithms.py): over the padded input's lengths L,
    the last axis real-to-half-spectrum (L/2 + 1 frequencies, rounded up to whole vectors), the
    others complex, each a GEMM-shaped reduction over one axis (2 flops per multiply-add);
    N x C forward, N x K inverse (only at the kept output positions); in between a complex
    multiply-add (8 flops) per frequency, output channel and input channel of the group."""
    lengths = [s + b + e for s, b, e in zip(spec.spatial, spec.pads_begin, spec.pads_end)]
    last = len(lengths) - 1
    stored = -(-(lengths[-1] // 2 + 1) // lanes) * lanes
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
    complex_item = 2 * item
    spectra = points * spec.batch * (spec.in_channels + spec.out_channels) * complex_item
    weights = points * spec.out_channels * (spec.in_channels // spec.group) * complex_item
    return Work(flops, io_bytes + 2 * spectra, 2 * len(lengths) + 1, weight_bytes=weights)


def _tile_factor(candidate: Candidate, spec: ConvSpec, lanes: int) -> float:
    """How a chosen tile fares against the heuristic's best: its loads per FMA, and too few accumulators."""
    if not candidate.tile:
        return 1.0
    m = candidate.algorithm.winograd_tile
    if m and candidate.layout is not None:
        count = spec.batch * math.prod(tile_grid(spec.out, m))
        best = winograd_tiles(spec.out_channels, candidate.layout.block, count, lanes)
    else:
        rows = spec.out[-2] if len(spec.out) > 1 else 1
        best = conv_tiles(spec.out_channels, rows, spec.out[-1], lanes)
    tile = ConvTile(*candidate.tile)
    factor = (1 + best[0].loads_per_fma) / (1 + tile.loads_per_fma) if best else 1.0
    return min(factor, 1.0) * (0.7 if tile.accumulators < MIN_ACCUMULATORS else 1.0)


def _tiled(candidate: Candidate, spec: ConvSpec, lanes: int) -> bool:
    """Whether an NCHW direct/gemm_1x1 kernel keeps a register tile of output-channel vectors, as the CPU
    lowering does when a group's output channels fill vectors and it reads more than one input
    channel (a depthwise conv computed by `direct` does not: its channels would need a gather)."""
    if candidate.algorithm not in (ConvAlgorithm.DIRECT, ConvAlgorithm.GEMM_1X1):
        return True
    rows = spec.out[-2] if len(spec.out) > 1 else 1
    group_out = spec.out_channels // spec.group
    return spec.in_channels // spec.group > 1 and bool(conv_tiles(group_out, rows, spec.out[-1], lanes))


def efficiency(candidate: Candidate, spec: ConvSpec, machine: Machine) -> float:
    """The fraction of peak the candidate's kernel reaches (calibration.py says where each number comes from).

    `direct` on a depthwise workload in a channels-inner layout runs the same per-channel
    loop nest as `depthwise` there (a vector of channels, one input channel each), and
    measures the same, so it is costed as depthwise.
    """
    kind = LayoutKind.NCHW if candidate.layout is None else candidate.layout.kind
    if machine.is_gpu:
        return GPU_EFFICIENCY[candidate.algorithm]
    algorithm = candidate.algorithm
    if algorithm is ConvAlgorithm.DIRECT and kind is not LayoutKind.NCHW and spec.group == spec.in_channels > 1:
        algorithm = ConvAlgorithm.DEPTHWISE
    base = CPU_EFFICIENCY[algorithm, kind]
    if kind is LayoutKind.NCHW and not _tiled(candidate, spec, machine.lanes):
        base *= UNTILED
    return base * _tile_factor(candidate, spec, machine.lanes)


def transform_bytes(candidate: Candidate, spec: ConvSpec, machine: Machine) -> float:
    """Bytes of converting X from, and Y back to, the blocked layout its neighbours are stored in (CPU)."""
    if machine.is_gpu or len(spec.spatial) != 2 or (candidate.layout is not None
                                                     and candidate.layout.kind is LayoutKind.NCHWC):
        return 0.0
    x, _, y = _tensor_bytes(spec)
    blocked_in = channel_block((spec.in_channels,), machine.lanes) is not None
    blocked_out = channel_block((spec.out_channels,), machine.lanes) is not None
    return 2 * (x * blocked_in + y * blocked_out)


def estimate(candidate: Candidate, spec: ConvSpec, machine: Machine) -> Estimate:
    done = work(candidate.algorithm, spec, machine.lanes)
    eff = efficiency(candidate, spec, machine)
    moved = transform_bytes(candidate, spec, machine)
    compute = (done.flops - done.transform_flops) / (machine.peak * eff)
    if done.transform_flops:
        compute += done.transform_flops / (machine.peak * transform_efficiency(candidate, machine))
    seconds = compute + done.bytes / machine.bandwidth + done.weight_bytes / machine.memory_bandwidth \
        + moved / machine.transform_bandwidth + done.stages * machine.launch
    return Estimate(candidate, seconds, done, eff, moved)


def transform_efficiency(candidate: Candidate, machine: Machine) -> float:
    """The fraction of peak Winograd's tile transforms reach: vectorized over tiles in NCHW, over a
    channel block in NCHWc."""
    if machine.is_gpu:
        return GPU_EFFICIENCY_TRANSFORMS
    return CPU_EFFICIENCY_TRANSFORMS[LayoutKind.NCHW if candidate.layout is None else candidate.layout.kind]
