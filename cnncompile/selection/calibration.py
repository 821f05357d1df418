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
    winograd_f2x3 NCHW     product .31 .10 (3x3@56, 3x3@14), with transforms .02  .10  (see below)
    winograd_f4x3 NCHW     product .63 .63, with transforms .02                   .12  (see below)
    Winograd transforms    .0185 (solved with F(4,3)'s product from both layers)  .02
    depthwise NCHW/8c/NHWC .15 .15 / .48 .48 / .15 .29 (dw 32@112, 144@56)        .145 / .48 / .22
    winograd NCHW8c        one efficiency for product and transforms (below)      .27 / .27
    fft NCHW               .04 (7x7 32->32 @28)                                   .04
    direct NCHW, untiled   .12 .06 on the depthwise layers: .45 of tiled          UNTILED .45

Winograd's tile transforms are costed apart from its element-wise GEMM (cost.Work): one
efficiency per layer cannot fit both 3x3 layers (.08 at 64x56x56, where the transforms
weigh most, .21 at 256x14x14), two can, and what they say is physical: the dense 6x6
transforms run at ~2% of peak, the batched GEMM at ~60%.

Winograd's product efficiency is set from whole networks, not from its kernel alone.
Alone, with its weights hot in cache, F(4,3) measured 1.45x faster than direct/NCHW8c on
3x3@14 and 1.13x on 3x3@56 (product efficiency .63). In a network it gained nothing:
ResNet-50 at 224, batch 1, Winograd on the 3x3 layers of stages 2-4 (and the 10 layout
transforms it brings, being NCHW-only among NCHW8c neighbours): median 82.6 ms (min 74.0)
against 78.5 ms (75.4) without; ResNet-18 with Winograd on every 3x3 stride-1 layer
40.8 ms against 38.8 ms. Its transformed weights are (m+2)^2/9 = 4x the plain ones and
come from memory there (now charged), which explains part of the gap; .12 is the
product efficiency under which the model agrees with the networks on every ResNet 3x3
layer (direct/NCHW8c wins; F(4,3) needs < .15 at 256x14x14, < .17 at 512x7x7). It still
picks F(4,3) where the arithmetic saving is large: VGG-16's six 3x3 layers of 256-512
channels at 56-14, and there it pays: VGG-16 at 224, batch 1, median 395 ms (min 352)
against 510 ms (450) without Winograd, alternating runs. Tuning (cnncompile.tuning)
measures Winograd wherever it might win.

Winograd on blocked feature maps (lowering/conv_algorithms/winograd_nchwc.py) is another
kernel: its transforms are vector operations on channel blocks, its per-point GEMM the
direct NCHW8c register tile, and it needs no layout transform among NCHW8c neighbours.
Measured against direct/NCHW8c on the same layers (kernels alone, best of 3, batch 1;
the machine shared), direct / Winograd time was: 3x3 64@56 F(2,3) 1.7 F(4,3) 2.9,
128@28 2.2 1.5, 256@14 1.6 2.3, 512@7 1.5 2.3, 128->32@56 1.7 2.4, 128->32@14 1.1 0.85.
The product and the transforms at .27 each (direct/NCHW8c's .275: the same micro-kernel,
and transforms that cost little next to it) reproduce those ratios within ~25% on the
large layers and rank F(4,3) first on them; in a network the memory cost of its 4x larger
transformed weights (charged by cost.Work.weight_bytes) moves layer 4 of a ResNet at
batch 1 towards F(2,3) or direct. ResNet-18, batch 1: 19.3 ms against onnxruntime's
25.8 (direct/NCHW8c everywhere: ~31 ms).

With these the model's pick is the measured fastest kernel on 1x1 64->256
(gemm_1x1/NCHW8c) and both depthwise layers (NCHW8c, direct or depthwise within 5%), and
within the measured top three elsewhere (1x1 256->64, the stride-2 3x3, the 7x7 where NCHW
measured fastest), direct/NCHW8c on the 3x3 stride-1 layers as the networks measured. The
machine was shared with other jobs while measuring (medians 1.2-3x the fastest runs), so
these rank kernels; they are not a benchmark.

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
    (A.WINOGRAD_F2X3, L.NCHW): 0.10,
    (A.WINOGRAD_F4X3, L.NCHW): 0.12,
    (A.WINOGRAD_F2X3, L.NCHWC): 0.27,
    (A.WINOGRAD_F4X3, L.NCHWC): 0.27,
    (A.FFT, L.NCHW): 0.04,
}

# Winograd's input and output tile transforms (cost.Work.transform_flops), by the layout they work in.
CPU_EFFICIENCY_TRANSFORMS: dict[LayoutKind, float] = {L.NCHW: 0.02, L.NCHWC: 0.27}
GPU_EFFICIENCY_TRANSFORMS = 0.10

# An NCHW direct or gemm_1x1 conv whose output channels do not fill SIMD vectors (or that reads
# one input channel per group) gets the plain schedule instead of a register tile.
UNTILED = 0.45

GPU_EFFICIENCY: dict[ConvAlgorithm, float] = {
    A.DIRECT: 0.15,
    A.GEMM_1X1: 0.50,
    A.IM2COL_GEMM: 0.45,
    A.WINOGRAD_F2X3: 0.35,
    A.WINOGRAD_F4X3: 0.35,
    A.DEPTHWISE: 0.10,
    A.FFT: 0.20,
}
