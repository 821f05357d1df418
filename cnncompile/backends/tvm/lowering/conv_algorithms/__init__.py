"""The convolution algorithms of an NCHW FusedConv other than `direct`: each a different kernel.

    depthwise      conv[n, o, p] = sum_rk padded[n, o / multiplier, p*s + rk*d] w[o, 0, rk]: one
                   channel's window sum, with no reduction over channels          (kind CONV)
    gemm_1x1       X viewed per batch as a (C, pixels) matrix, one GEMM per group:
                   gemm[n, g, o, j] = sum_k Wg[k, o] X[n, g, k, j]                (kind CONV_GEMM)
    im2col_gemm    the windows unrolled into a materialized `im2col` matrix (C/G x taps rows,
                   one column per output pixel), then the same GEMM              (kind CONV_GEMM)
    winograd_f2x3  F(m, 3), m = 2 or 4: V = BT d B for every a x a tile of the padded input
    winograd_f4x3  (`winograd_input`), M = U V as a GEMM over channels batched over the a x a
                   transform points (U = G g GT computed at build time), the m x m output
                   tiles AT M A (`winograd_output`), cropped by the epilogue; each transform
                   is two passes of one matrix (rows, then columns)             (kind WINOGRAD)
    fft            the correlation in the frequency domain: DFTs along each axis (`dft*`), a
                   complex multiply-accumulate with the kernel's spectrum (computed at build
                   time) over the group's channels (`spectrum`), inverse DFTs (`idft*`)  (kind FFT)

The GEMMs put output channels on rows and pixels (or Winograd tiles) on columns, so the
result is NCHW as it stands and the epilogue reads it in place; the CPU schedules tile
(rows x vectors of columns) with the columns contiguous in memory. Weights that a
schedule wants in another order, and every build-time transform of them, are repacked
(`Kernel.repack`): Winograd and the FFT need constant weights; the others read weights
given at run time where they lie.

A conv whose output is stored in a layout is lowered by conv_layouts.py, except Winograd,
whose NCHWc kernel is `winograd_nchwc.py` (kind WINOGRAD_NCHWC).

One module per algorithm family; `problem.py` holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.backends.tvm.kernel import Call, Kernel
from cnncompile.backends.tvm.lowering.conv_algorithms.depthwise import depthwise
from cnncompile.backends.tvm.lowering.conv_algorithms.fft import fft
from cnncompile.backends.tvm.lowering.conv_algorithms.gemm import gemm_1x1, im2col_gemm
from cnncompile.backends.tvm.lowering.conv_algorithms.problem import ConvProblem, checked_tile, require_constant_weights
from cnncompile.backends.tvm.lowering.conv_algorithms.winograd import winograd
from cnncompile.backends.tvm.lowering.conv_algorithms.winograd_nchwc import winograd_nchwc
from cnncompile.backends.tvm.lowering.epilogue import Epilogue
from cnncompile.ops.spatial import resolve_window
from cnncompile.errors import AttrError, CnnCompileError

__all__ = ["ConvProblem", "checked_tile", "lower_algorithm", "lower_stored_winograd"]


# The algorithms that transform the weights at build time, which need them as graph constants.
_BUILD_TIME_WEIGHTS = frozenset({ConvAlgorithm.WINOGRAD_F2X3, ConvAlgorithm.WINOGRAD_F4X3, ConvAlgorithm.FFT})

# The kernels whose schedule has no register tile to tune.
_UNTILED = frozenset({ConvAlgorithm.DEPTHWISE, ConvAlgorithm.FFT})

_KERNELS: dict[ConvAlgorithm, Callable[[ConvProblem], Kernel]] = {
    ConvAlgorithm.DEPTHWISE: depthwise,
    ConvAlgorithm.GEMM_1X1: gemm_1x1,
    ConvAlgorithm.IM2COL_GEMM: im2col_gemm,
    ConvAlgorithm.WINOGRAD_F2X3: partial(winograd, m=ConvAlgorithm.WINOGRAD_F2X3.winograd_tile),
    ConvAlgorithm.WINOGRAD_F4X3: partial(winograd, m=ConvAlgorithm.WINOGRAD_F4X3.winograd_tile),
    ConvAlgorithm.FFT: fft,
}


def lower_algorithm(algorithm: ConvAlgorithm, p: ConvProblem) -> Kernel:
    """The kernel of `algorithm` (not `direct`, which conv.py lowers) for an NCHW conv; the op's shape
    rule has checked that the algorithm applies."""
    if algorithm not in _KERNELS:
        raise CnnCompileError(f"no NCHW kernel for conv algorithm {algorithm.value} here")
    if algorithm in _BUILD_TIME_WEIGHTS:
        require_constant_weights(p.call, algorithm)
    if p.call.attrs.tile and algorithm in _UNTILED:
        raise AttrError(f"tile {list(p.call.attrs.tile)}: {algorithm.value} kernels take no tuned register tile")
    return _KERNELS[algorithm](p)


def lower_stored_winograd(call: Call, epilogue: Epilogue, algorithm: ConvAlgorithm) -> Kernel:
    """F(m, 3) for a conv whose output is stored in a layout (NCHWc: the op's shape rule allows no other)."""
    if call.lanes is None:
        raise CnnCompileError("Winograd on blocked feature maps is a CPU kernel; on a GPU, keep the conv in NCHW")
    require_constant_weights(call, algorithm)
    attrs = call.attrs
    x_type, w_type = call.in_types[:2]
    window = resolve_window("Conv", x_type.shape[2:], w_type.shape[2:], attrs.strides, attrs.dilations,
                            attrs.pads, attrs.auto_pad)
    return winograd_nchwc(call, window, epilogue, algorithm.winograd_tile)
