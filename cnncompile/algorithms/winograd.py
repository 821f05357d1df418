"""Winograd minimal filtering F(m, r): the transform matrices and the compile-time weight transform.

F(m, r) computes m outputs of an r-tap correlation from a = m + r - 1 inputs with a
multiplies, as  y = AT [(G g) * (BT d)].  The matrices come from the Cook-Toom
construction. Linear convolution of h (length m) with g (length r) is polynomial
multiplication, so with Va, Vm, Vr evaluating polynomials at the same a points (the last
point being infinity, where a polynomial "evaluates" to its leading coefficient),
    conv(h, g) = Va^-1 [(Vm h) * (Vr g)].
Correlation is that map's transpose in h, hence  y = Vm^T [(Vr g) * (Va^-T d)].
Lagrange interpolation gives Va^-1: column i holds the coefficients of
N_i(x) / f_i, with N_i(x) = prod_{j != i} (x - p_j) over the finite points and
f_i = N_i(p_i); the column of infinity holds those of prod_j (x - p_j) (f = 1). Moving
the 1/f_i into G keeps BT integral for integer points:
    AT = Vm^T,   G = diag(1/f) Vr,   BT[i] = coefficients of N_i (ascending powers).
The arithmetic is exact (fractions) and only then rounded to float64. Points are taken in
the order 0, 1, -1, 2, -2, 1/2, -1/2, 3, -3, 1/3, ...: small magnitudes keep the
transforms' rounding error low, which is why F(4,3) (points up to +-2) is still usable
in float32 and larger tiles are not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class WinogradMatrices:
    """F(m, r)'s transforms, float64: output AT (m, a), weights G (a, r), input BT (a, a)."""

    m: int
    r: int
    AT: np.ndarray
    G: np.ndarray
    BT: np.ndarray

    @property
    def a(self) -> int:
        """The input tile's size, m + r - 1."""
        return self.m + self.r - 1


def interpolation_points(n: int) -> list[Fraction]:
    """The first `n` finite points of 0, 1, -1, 2, -2, 1/2, -1/2, 3, -3, 1/3, -1/3, ..."""
    points = [Fraction(0)]
    k = 1
    while len(points) < n:
        points += [p for p in dict.fromkeys((Fraction(k), Fraction(-k), Fraction(1, k), Fraction(-1, k)))
                   if p not in points]
        k += 1
    return points[:n]


def _poly_from_roots(roots: list[Fraction]) -> list[Fraction]:
    """Coefficients (ascending powers) of prod (x - root)."""
    coefficients = [Fraction(1)]
    for root in roots:
        shifted = [Fraction(0), *coefficients]
        coefficients = [s - root * c for s, c in zip(shifted, [*coefficients, Fraction(0)])]
    return coefficients


def _vandermonde(points: list[Fraction], columns: int) -> list[list[Fraction]]:
    """Rows evaluating a polynomial with `columns` coefficients at each point, then at infinity."""
    rows = [[p ** j for j in range(columns)] for p in points]
    return rows + [[Fraction(int(j == columns - 1)) for j in range(columns)]]


@functools.cache
def winograd_matrices(m: int, r: int) -> WinogradMatrices:
    """F(m, r) by Cook-Toom (see the module docstring); cached, so treat the arrays as read-only."""
    if m < 1 or r < 1:
        raise ValueError(f"F({m}, {r}) needs m >= 1 and r >= 1")
    a = m + r - 1
    points = interpolation_points(a - 1)
    numerators = [_poly_from_roots(points[:i] + points[i + 1:]) + [Fraction(0)] for i in range(a - 1)]
    scales = [sum(c * p ** j for j, c in enumerate(poly)) for p, poly in zip(points, numerators)] + [Fraction(1)]
    numerators.append(_poly_from_roots(points))
    at = np.array(_vandermonde(points, m), dtype=np.float64).T
    g = np.array([[v / f for v in row] for row, f in zip(_vandermonde(points, r), scales)], dtype=np.float64)
    bt = np.array(numerators, dtype=np.float64)
    for array in (at, g, bt):
        array.flags.writeable = False
    return WinogradMatrices(m, r, at, g, bt)


def tile_grid(out: tuple[int, ...], m: int) -> tuple[int, ...]:
    """m x m output tiles along each spatial axis of an output of size `out`: the last may overhang its edge."""
    return tuple(-(-size // m) for size in out)


def transform_weights(w: np.ndarray, m: int) -> np.ndarray:
    """U = G g G^T for every (out, in) channel pair: (O, C, r, r) -> (a, a, O, C), in w's dtype."""
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"Winograd weights must be (O, C, r, r), got {list(w.shape)}")
    return transform_taps(w.transpose(2, 3, 0, 1), m)


def transform_taps(taps: np.ndarray, m: int) -> np.ndarray:
    """U = G g G^T over the two leading axes of `taps` (r, r, ...) -> (a, a, ...), in taps' dtype.

    The kernel taps lead so that a caller may order the channels as its kernel reads them
    beforehand (permuting the r x r taps, not the (m+2)^2 / r^2 times larger result) and
    both products are single matrix products. Computed in float64 and rounded once, so
    the only float32 error a Winograd conv adds at run time comes from the input and
    output transforms.
    """
    r = taps.shape[0]
    G = winograd_matrices(m, r).G
    a = G.shape[0]
    flat = np.ascontiguousarray(taps, dtype=np.float64).reshape(r, -1)   # (r, r x rest)
    rows = (G @ flat).reshape(a, r, -1)                                    # (a, r, rest)
    return (G @ rows).reshape(a, a, *taps.shape[2:]).astype(taps.dtype)


def winograd_conv2d(x: np.ndarray, w: np.ndarray, m: int, pads_begin: tuple[int, ...],
                    pads_end: tuple[int, ...]) -> np.ndarray:
    """A 2-D stride-1 ungrouped conv by F(m x m, r x r), computed in X's dtype.

    The padded input is cut into overlapping a x a tiles at stride m (padded further at the
    bottom and right so that the tiles cover a whole number of m x m output tiles, cropped
    at the end); per tile V = BT d B, then for every one of the a x a positions (xi, nu) the
    channel reduction M[xi, nu] = U[xi, nu] @ V[xi, nu] is one matmul (O, C) @ (C, tiles),
    and Y = AT M A.
    """
    n, c, h, width = x.shape
    o, r = w.shape[0], w.shape[2]
    f = winograd_matrices(m, r)
    out = (h + pads_begin[0] + pads_end[0] - r + 1, width + pads_begin[1] + pads_end[1] - r + 1)
    tiles = tile_grid(tuple(out), m)
    pad_width = [(0, 0), (0, 0)] + [(b, t * m + r - 1 - size - b) for b, t, size in zip(pads_begin, tiles, (h, width))]
    d = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad_width), (f.a, f.a), axis=(2, 3))[:, :, ::m, ::m]
    bt, at = f.BT.astype(x.dtype), f.AT.astype(x.dtype)
    v = np.einsum("ai,nctsij,bj->abcnts", bt, d, bt, optimize=True).reshape(f.a, f.a, c, -1)
    product = np.matmul(transform_weights(w, m), v)
    y = np.einsum("ia,abop,jb->ijop", at, product, at, optimize=True).reshape(m, m, o, n, *tiles)
    y = y.transpose(3, 2, 4, 0, 5, 1).reshape(n, o, tiles[0] * m, tiles[1] * m)
    return np.ascontiguousarray(y[:, :, :out[0], :out[1]])
