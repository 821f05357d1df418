"""The conv kernels, one compute per algorithm, each built from the node's plan (backends/tvm/plan.py).

    direct         the definition over logical indices, every layout an index map around it
                   (templates DIRECT, DIRECT_BLOCKED, DIRECT_STORED; depthwise convs too)
    gemm_1x1       X viewed per batch as a (C, pixels) matrix, one GEMM per group:
                   gemm[n, g, o, j] = sum_k Wg[k, o] X[n, g, k, j]                (template GEMM)
    im2col_gemm    the windows unrolled into a materialized `im2col` matrix (C/G x taps rows,
                   one column per output pixel), then the same GEMM              (template GEMM)
    winograd_f2x3  F(m, 3), m = 2 or 4: V = BT d B for every a x a tile of the padded input
    winograd_f4x3  (`winograd_input`), M = U V as a GEMM over channels batched over the a x a
                   transform points (U = G g GT computed at build time), the m x m output
                   tiles AT M A (`winograd_output`), cropped by the epilogue; in NCHW the
                   transforms vectorize over tiles (WINOGRAD), in NCHWc over channel blocks
                   (WINOGRAD_BLOCKED, winograd_nchwc.py)
    fft            the correlation in the frequency domain: DFTs along each axis (`dft*`), a
                   complex multiply-accumulate with the kernel's spectrum (computed at build
                   time) over the group's channels (`spectrum`), inverse DFTs (`idft*`)  (FFT)

The GEMMs put output channels on rows and pixels (or Winograd tiles) on columns, so the
result is NCHW as it stands and the epilogue reads it in place; the CPU schedules tile
(rows x vectors of columns) with the columns contiguous in memory. The weights reach each
kernel in the plan's WeightForm, repacked or transformed at build time (`Kernel.repack`).
"""

from __future__ import annotations

from collections.abc import Callable

from cnncompile.backends.tvm.kernel import Kernel
from cnncompile.backends.tvm.lowering.conv_algorithms.direct import direct
from cnncompile.backends.tvm.lowering.conv_algorithms.fft import fft
from cnncompile.backends.tvm.lowering.conv_algorithms.gemm import gemm_1x1, im2col_gemm
from cnncompile.backends.tvm.lowering.conv_algorithms.problem import ConvProblem
from cnncompile.backends.tvm.lowering.conv_algorithms.winograd import winograd
from cnncompile.backends.tvm.lowering.conv_algorithms.winograd_nchwc import winograd_nchwc
from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.backends.tvm.plan import Template

__all__ = ["ConvProblem", "lower_planned"]

_KERNELS: dict[Template, Callable[[ConvProblem], Kernel]] = {
    Template.DIRECT: direct,
    Template.DIRECT_BLOCKED: direct,
    Template.DIRECT_STORED: direct,
    Template.WINOGRAD: winograd,
    Template.WINOGRAD_BLOCKED: winograd_nchwc,
    Template.FFT: fft,
}


def lower_planned(p: ConvProblem) -> Kernel:
    """The kernel of the problem's plan."""
    if p.plan.template is Template.GEMM:
        return gemm_1x1(p) if p.plan.algorithm is ConvAlgorithm.GEMM_1X1 else im2col_gemm(p)
    return _KERNELS[p.plan.template](p)
