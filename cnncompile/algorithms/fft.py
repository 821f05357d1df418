"""Convolution as pointwise products in the frequency domain.

Cross-correlation is circular correlation when nothing wraps around:
    y[o] = sum_t x[o + t] w[t]   <->   Y = X * conj(W)   (W of real w)
for transforms of any length L. The outputs kept, o <= S - k for a padded input of size S
and a kernel of size k, read x only up to o + t <= S - 1, so L >= S is enough (no room
for the kernel's tail is needed, unlike the full linear convolution). L is rounded up to a
product of 2, 3 and 5, the sizes numpy's FFT is fast at. The channel reduction happens
in the frequency domain, as one matmul per frequency over each group's channels, so
there is one inverse transform per output channel.
"""

from __future__ import annotations

import numpy as np


def fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (such numbers are dense: the search is short)."""
    length = max(n, 1)
    while not _five_smooth(length):
        length += 1
    return length


def _five_smooth(k: int) -> bool:
    for p in (2, 3, 5):
        while k % p == 0:
            k //= p
    return k == 1


def fft_conv(x: np.ndarray, w: np.ndarray, pads_begin: tuple[int, ...], pads_end: tuple[int, ...],
             group: int) -> np.ndarray:
    """A stride-1, undilated conv of any rank and group count, via real FFTs; X's dtype out."""
    n, c, *spatial = x.shape
    m, cg, *kernel = w.shape
    rank = len(spatial)
    padded = [s + b + e for s, b, e in zip(spatial, pads_begin, pads_end)]
    out = [p - k + 1 for p, k in zip(padded, kernel)]
    lengths = [fast_length(p) for p in padded]
    axes = tuple(range(2, 2 + rank))
    xp = np.pad(x, [(0, 0), (0, 0), *zip(pads_begin, pads_end)])
    xf = np.fft.rfftn(xp, lengths, axes=axes).reshape(n, group, cg, -1)
    wf = np.conj(np.fft.rfftn(w, lengths, axes=axes)).reshape(group, m // group, cg, -1)
    # per (group, frequency): (N, C/G) @ (C/G, M/G)
    yf = np.matmul(xf.transpose(1, 3, 0, 2), wf.transpose(0, 3, 2, 1)).transpose(2, 0, 3, 1)
    frequencies = (*lengths[:-1], lengths[-1] // 2 + 1)
    y = np.fft.irfftn(yf.reshape(n, m, *frequencies), lengths, axes=axes)
    return y[(slice(None), slice(None), *(slice(0, o) for o in out))].astype(x.dtype)
