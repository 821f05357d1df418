"""Each convolution algorithm in NumPy, so that its numerics are checked against `direct`.

Every function takes X (N, C, *spatial), W (M, C/group, *kernel) and the resolved window,
returns conv(X, W) without bias in X's dtype, and computes in that dtype: a float32 run
shows the rounding the algorithm itself brings (Winograd's transforms, the FFT's), which
is what the numerical policy bounds. `convolve` checks applicability first, so an
algorithm never runs on a workload it does not compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec, why_not
from cnncompile.algorithms.fft import fft_conv
from cnncompile.algorithms.windows import Window, windows
from cnncompile.algorithms.winograd import winograd_conv2d
from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType


def direct(x: np.ndarray, w: np.ndarray, window: Window, group: int) -> np.ndarray:
    """The definition: y = sum over kernel taps t of W[:, :, t] applied to X's window shifted by t.

    Each tap is one grouped matmul (G, M/G, C/G) @ (N, G, C/G, out) over a strided view of
    the padded input, accumulated into Y.
    """
    n, c = x.shape[:2]
    m = w.shape[0]
    patches = windows(x, window)
    taps = np.ascontiguousarray(np.moveaxis(w.reshape(group, m // group, c // group, -1), -1, 0))
    y = np.zeros((n, group, m // group, math.prod(window.out)), x.dtype)
    for tap, offset in zip(taps, np.ndindex(*window.kernel)):
        shifted = patches[(Ellipsis, *offset)].reshape(n, group, c // group, -1)
        y += np.matmul(tap, shifted)
    return y.reshape(n, m, *window.out)


def im2col_gemm(x: np.ndarray, w: np.ndarray, window: Window, group: int) -> np.ndarray:
    """Windows unrolled as (N, G, C/G*K, out), then one broadcast matmul (G, M/G, C/G*K) @ that.

    The product is already (N, M, out): no output transpose.
    """
    n, c = x.shape[:2]
    m, rank = w.shape[0], len(window.kernel)
    patches = windows(x, window).reshape(n, group, c // group, *window.out, *window.kernel)
    patches = patches.transpose(0, 1, 2, *range(3 + rank, 3 + 2 * rank), *range(3, 3 + rank))
    cols = patches.reshape(n, group, -1, math.prod(window.out))
    return np.matmul(w.reshape(group, m // group, -1), cols).reshape(n, m, *window.out)


def gemm_1x1(x: np.ndarray, w: np.ndarray, window: Window, group: int) -> np.ndarray:
    """A 1x1, stride-1, unpadded conv is already a matmul on X reshaped to (N, G, C/G, pixels)."""
    n, c = x.shape[:2]
    m = w.shape[0]
    return np.matmul(w.reshape(group, m // group, c // group), x.reshape(n, group, c // group, -1)) \
        .reshape(n, m, *window.out)


def depthwise(x: np.ndarray, w: np.ndarray, window: Window, group: int) -> np.ndarray:
    """One input channel per group: per tap, each channel's shifted window times its M/C weights.

    No reduction over channels, so no matmul: a broadcast multiply-add per kernel tap.
    """
    n, c = x.shape[:2]
    multiplier = w.shape[0] // c
    rank = len(window.kernel)
    patches = windows(x, window)
    taps = w.reshape(c, multiplier, *(1,) * rank, -1)
    y = np.zeros((n, c, multiplier, *window.out), x.dtype)
    for k, offset in enumerate(np.ndindex(*window.kernel)):
        y += patches[(Ellipsis, *offset)][:, :, None] * taps[..., k]
    return y.reshape(n, c * multiplier, *window.out)


def _winograd(m: int) -> Callable[[np.ndarray, np.ndarray, Window, int], np.ndarray]:
    return lambda x, w, window, group: winograd_conv2d(x, w, m, window.pads_begin, window.pads_end)


ALGORITHMS: dict[ConvAlgorithm, Callable[[np.ndarray, np.ndarray, Window, int], np.ndarray]] = {
    ConvAlgorithm.DIRECT: direct,
    ConvAlgorithm.IM2COL_GEMM: im2col_gemm,
    ConvAlgorithm.GEMM_1X1: gemm_1x1,
    ConvAlgorithm.WINOGRAD_F2X3: _winograd(ConvAlgorithm.WINOGRAD_F2X3.winograd_tile),
    ConvAlgorithm.WINOGRAD_F4X3: _winograd(ConvAlgorithm.WINOGRAD_F4X3.winograd_tile),
    ConvAlgorithm.DEPTHWISE: depthwise,
    ConvAlgorithm.FFT: lambda x, w, window, group: fft_conv(x, w, window.pads_begin, window.pads_end, group),
}


def convolve(algorithm: ConvAlgorithm, x: np.ndarray, w: np.ndarray, **conv) -> np.ndarray:
    """conv(X, W) without bias by `algorithm`; `conv` holds Conv's attributes.

    Raises ShapeError naming the algorithm when the operands do not form a conv or the
    algorithm does not apply to this one.
    """
    group = conv.get("group", 1)
    if x.ndim < 3 or w.ndim != x.ndim or x.dtype != w.dtype or group < 1 or x.shape[1] != w.shape[1] * group \
            or w.shape[0] % group:
        raise ShapeError(f"{algorithm.value}: X {x.dtype}{list(x.shape)} and W {w.dtype}{list(w.shape)} with "
                         f"group={group} do not form a conv (need one dtype, W.shape[1] * group = X channels, "
                         f"W.shape[0] divisible by group)")
    spec = ConvSpec.of(TensorType.of(x), TensorType.of(w), **conv)
    reason = why_not(algorithm, spec)
    if reason is not None:
        raise ShapeError(f"{algorithm.value} does not apply to {spec}: {reason}")
    window = Window(spec.kernel, spec.strides, spec.dilations, spec.pads_begin, spec.pads_end, spec.out)
    return ALGORITHMS[algorithm](x, w, window, group)
