"""Calibration constants of the cost model: the fraction of peak each of our kernels reaches.

CPU numbers are relative to cost.Machine's nominal peak (lanes x 2 FMA pipes x 2 flops x
cores x 3 GHz: 192 GFLOP/s for the 2-core AVX2 znver4 VM they were measured on) and are
the efficiencies that make the model's formula reproduce our TVM kernels' measured times
(`benchmarks/selection_calibration.py`, kernels alone, the fastest of 15 alternating
rounds) on the layers that dominate the zoo; the value is the median over the layers:

    (algorithm, layout)    implied per layer                                      set
    direct NCHW            .20 .18 .13 .21 .17 (3x3@56, 1x1 x2, 3x3@14, s2)      .19  (.69 on a 7x7 kernel)
    direct NCHW8c          .20 .34 .18 .38 .21 .48                                .275
    direct NHWC            .22 .29 .16 .14 .28 .34                                .22
    gemm_1x1 NCHW/8c/NHWC  .17 .22 / .42 .17 / .23 .15 (1x1 64->256, 256->64)   .195 / .29 / .19
    im2col_gemm NCHW       .14 .15 .14 .06 .22 .21                                .14
    winograd NCHW          product and transforms fitted together (below)         .13, transforms .08
    winograd NCHW8c        product and transforms fitted together (below)         .23, transforms .12
    depthwise NCHW/8c/NHWC .15 .15 / .48 .48 / .15 .29 (dw 32@112, 144@56)        .145 / .48 / .22
    fft NCHW               .04 (7x7 32->32 @28)                                   .04
    direct NCHW, untiled   .12 .06 on the depthwise layers: .45 of tiled          UNTILED .45

Winograd's tile transforms are costed apart from its element-wise GEMM (cost.Work): one
efficiency cannot fit layers where the transforms weigh differently (64 channels at 56x56
against 512 at 7x7), two can. Both Winograd kernels were fitted at once against
direct/NCHW8c's .275 on six 3x3 stride-1 layers (selection_calibration.py, 7 alternating
rounds, the fastest run, the machine shared), minimising the squared log error of the
model's direct/Winograd time ratio. Measured direct/NCHW8c : F(2,3) : F(4,3), ms:

    layer (C->K @ size)   direct/8c   F(2,3)/8c  F(4,3)/8c   F(2,3)/NCHW  F(4,3)/NCHW
    64->64 @56              2.66        1.72       1.07         2.15         2.25
    128->128 @28            1.55        0.85       0.68         1.66         1.28
    256->256 @14            1.66        0.99       1.01         1.92         1.01
    512->512 @7             1.77        1.66       1.57         1.67         5.17
    128->32 @56             1.63        1.31       0.85         1.73         1.91
    128->32 @14             0.145       0.140      0.182        0.236        0.208

The blocked kernel (lowering/conv_algorithms/winograd_nchwc.py: transforms as vector
operations on channel blocks, its per-point GEMM the direct NCHW8c register tile) fits at
product .23, transforms .12: the model's direct/F(4,3) ratios are 2.0, 2.4, 1.8, 1.3, 1.7,
1.2 against the measured 2.5, 2.3, 1.6, 1.1, 1.9, 0.8 (F(2,3): 1.35-1.6 against 1.55-1.8
on the large layers), so it ranks F(4,3) first wherever it measured first; on the smallest
layer (128->32 @14) it still prefers F(4,3), which measured 25% slower (tuning corrects
it). These kernels alone have their 4x larger transformed weights hot in cache; in a
network they come from memory (cost.Work.weight_bytes), which the 512 @7 numbers above
do not show. The NCHW kernel fits at .13 / .08 (its transforms vectorize over tiles, with
the layout transforms around it charged apart, cost.transform_bytes).

With these the model's pick is the measured fastest kernel on 1x1 64->256
(gemm_1x1/NCHW8c) and both depthwise layers (NCHW8c, direct or depthwise within 5%), and
within the measured top three elsewhere (1x1 256->64, the stride-2 3x3, the 7x7 where NCHW
measured fastest), Winograd/NCHW8c on the 3x3 stride-1 layers. The machine was shared
with other jobs while measuring (medians 1.2-3x the fastest runs), so these rank
kernels; they are not a benchmark.

GPU numbers are not measured (no GPU here): they encode the usual ordering of CUDA conv
kernels (GEMM-shaped kernels scheduled by dlight's Matmul rule well ahead of a direct loop
nest; depthwise memory-bound) and keep the GPU choice between im2col/gemm_1x1 and
Winograd on large 3x3 layers.
"""

from __future__ import annotations

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.ir.types import LayoutKind

A = ConvAlgorithm
L = LayoutKind

CPU_EFFICIENCY: dict[tuple[ConvAlgorithm, LayoutKind], float] = {
    (A.DIRECT, L.NCHW): 0.19,
    (A.DIRECT, L.NCHWC): 0.275,
    (A.DIRECT, L.NHWC): 0.22,
    (A.GEMM_1X1, L.NCHW): 0.195,
    (A.GEMM_1X1, L.NCHWC): 0.29,
    (A.GEMM_1X1, L.NHWC): 0.19,
    (A.DEPTHWISE, L.NCHW): 0.145,
    (A.DEPTHWISE, L.NCHWC): 0.48,
    (A.DEPTHWISE, L.NHWC): 0.22,
    (A.IM2COL_GEMM, L.NCHW): 0.14,
    (A.WINOGRAD_F2X3, L.NCHW): 0.13,
    (A.WINOGRAD_F4X3, L.NCHW): 0.13,
    (A.WINOGRAD_F2X3, L.NCHWC): 0.23,
    (A.WINOGRAD_F4X3, L.NCHWC): 0.23,
    (A.FFT, L.NCHW): 0.04,
}

# Winograd's input and output tile transforms (cost.Work.transform_flops), by the layout they work in.
CPU_EFFICIENCY_TRANSFORMS: dict[LayoutKind, float] = {L.NCHW: 0.08, L.NCHWC: 0.12}
GPU_EFFICIENCY_TRANSFORMS = 0.10

# An NCHW direct or gemm_1x1 conv whose output channels do not fill SIMD vectors (or that reads
# one input channel per group) gets the plain schedule instead of a register tile.
UNTILED = 0.45

# A CPU kernel's rate in a 16-bit type against the same float32 kernel's (fp32 time / bf16 time of the
# NCHW16c direct kernel, the median over benchmarks/bf16_kernels.py's ten layers, 1.61-2.19x and
# 0.45-1.15x; AMD EPYC Zen 5 with AVX512_BF16, 2 vCPUs, idle): a vdpbf16ps kernel (Dot.BF16_PAIRS) does
# a pair of multiply-adds per lane and instruction; one that widens its operands to float32 before each
# FMA gains nothing from them (and loses on layers with few channels per block).
PAIR_DOT_SPEEDUP = 1.93
WIDENED_FMA = 0.96

GPU_EFFICIENCY: dict[ConvAlgorithm, float] = {
    A.DIRECT: 0.15,
    A.GEMM_1X1: 0.50,
    A.IM2COL_GEMM: 0.45,
    A.WINOGRAD_F2X3: 0.35,
    A.WINOGRAD_F4X3: 0.35,
    A.DEPTHWISE: 0.10,
    A.FFT: 0.20,
}
