"""Conversions to the narrow types (float8, float4, int4, int2) as ONNX's Cast defines them.

ml_dtypes' `astype` rounds to nearest even and is ONNX's conversion wherever the spec names no
other: a float8 without `saturate` (an overflow is inf for E5M2, NaN for the others, -0 is 0 for
the FNUZ types), float4 (which has no inf or NaN and saturates) and the other integers. Three
conversions differ:
  - a float to int4, uint4, int2 or uint2 is truncated toward zero to an int64 first, whose low
    bits the narrow integer keeps as any integer conversion does (9.0 to int4 is -7, as onnx's
    conformance data has it; the spec leaves out-of-range floats undefined, and ml_dtypes gives 0);
  - saturate=1 to a float8 clamps to its largest finite value first, so inf and every overflow
    become +-FLT_MAX (the spec's table); NaN stays NaN;
  - float8e8m0 holds only powers of two, 2^-127 to 2^127, and rounds by `round_mode`: up (away
    from zero), down, or to nearest with ties up; saturate=1 clamps to that range (inf to the
    largest), saturate=0 makes 0, inf and whatever falls outside it NaN. The sign is dropped, as
    the spec leaves negative inputs unspecified. (onnx's reference tests only some mantissa bits for
    "up", mask 0x4FFFFF, so it takes 1.25 down to 1; and it gives NaN for inf even when saturating.)
Where a conversion clamps or rounds here, its input is widened to float64 first, which holds every
float and every integer up to 2^53 exactly, so the one rounding is the conversion's.
"""

from __future__ import annotations

import enum

import ml_dtypes
import numpy as np

from cnncompile.ir.types import DType, is_floating

SATURATING = frozenset({DType.FLOAT8E4M3FN, DType.FLOAT8E4M3FNUZ, DType.FLOAT8E5M2, DType.FLOAT8E5M2FNUZ})
E8M0_EXPONENTS = (-127, 127)


class RoundMode(enum.Enum):
    """How a conversion to float8e8m0 picks a power of two (Cast-24's `round_mode`)."""

    UP = "up"
    DOWN = "down"
    NEAREST = "nearest"


def convert(x: np.ndarray, to: DType, saturate: int = 1, round_mode: RoundMode = RoundMode.UP) -> np.ndarray:
    """`x` in element type `to`, as ONNX's Cast converts it."""
    if to is DType.FLOAT8E8M0:
        return to_e8m0(x, saturate, round_mode)
    x = np.asarray(x)
    if to in SATURATING and saturate:
        largest = float(ml_dtypes.finfo(to.numpy).max)
        return np.clip(x.astype(np.float64), -largest, largest).astype(to.numpy)
    with np.errstate(invalid="ignore"):  # NaN or inf to an integer, which the spec leaves undefined
        if to.is_narrow and not is_floating(to.numpy) and is_floating(x.dtype):
            x = np.trunc(x.astype(np.float64)).astype(np.int64)
        return x.astype(to.numpy)


def to_e8m0(x: np.ndarray, saturate: int, round_mode: RoundMode) -> np.ndarray:
    """|x| as a power of two 2^k, k rounded by `round_mode` (see the module's docstring)."""
    magnitude = np.abs(np.asarray(x).astype(np.float64))
    fraction, exponent = np.frexp(magnitude)  # magnitude = fraction * 2^exponent, fraction in [0.5, 1)
    k = (exponent - 1).astype(np.float64)  # floor(log2 |x|)
    if round_mode is RoundMode.UP:
        k += fraction > 0.5
    elif round_mode is RoundMode.NEAREST:
        k += fraction >= 0.75  # the mantissa 2 * fraction is at least 1.5: closer to 2^(k+1), or a tie
    low, high = E8M0_EXPONENTS
    finite = np.isfinite(magnitude) & (magnitude > 0)
    if saturate:  # 0 to the smallest power, inf to the largest; NaN stays NaN
        k = np.where(finite, np.clip(k, low, high), np.where(magnitude == 0, low, high))
        held = ~np.isnan(magnitude)
    else:
        held = finite & (k >= low) & (k <= high)
    powers = np.ldexp(1.0, np.where(held, k, 0).astype(np.int64))
    return np.where(held, powers, np.nan).astype(DType.FLOAT8E8M0.numpy)
