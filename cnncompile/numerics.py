"""The numerical policy every comparison in cnncompile uses (DESIGN.md).

Error is relative to the reference's largest magnitude, so one number judges a whole
tensor whatever its scale: max|out - ref| / max(max|ref|, 1e-6). NaN or Inf where the
reference is finite always fails. The bound it is held to is `tolerance(dtype, algorithm)`:
the element type's, or the looser one of the conv algorithm that computed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.errors import CnnCompileError
from cnncompile.ir.types import DType, is_floating

# A node's bound by the element type it computes in ...
DTYPE_TOLERANCE: Mapping[DType, float] = MappingProxyType({
    DType.FLOAT32: 1e-5,
    DType.FLOAT16: 1e-2,
    DType.BFLOAT16: 2e-2,
})

# ... loosened for the conv algorithms whose transforms round more than a dot product does.
ALGORITHM_TOLERANCE: Mapping[ConvAlgorithm, float] = MappingProxyType({
    ConvAlgorithm.WINOGRAD_F2X3: 1e-4,
    ConvAlgorithm.WINOGRAD_F4X3: 1e-3,
    ConvAlgorithm.FFT: 1e-4,
})


def tolerance(dtype: DType, algorithm: ConvAlgorithm | None = None) -> float:
    """The bound on `relative_error` for a result computed in `dtype` (by `algorithm`, for a
    conv): the looser of the element type's and the algorithm's."""
    if dtype not in DTYPE_TOLERANCE:
        raise CnnCompileError(f"the numerical policy has no tolerance for {dtype.value} results; it bounds "
                              + ", ".join(d.value for d in DTYPE_TOLERANCE))
    return max(DTYPE_TOLERANCE[dtype], ALGORITHM_TOLERANCE.get(algorithm, 0.0))


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """The policy's error; inf when `out` is non-finite where `ref` is finite or shapes differ."""
    out = np.asarray(out)
    ref = np.asarray(ref)
    if out.shape != ref.shape:
        return float("inf")
    if out.size == 0:
        return 0.0
    if out.dtype == bool or ref.dtype == bool or not (np.issubdtype(ref.dtype, np.number) or is_floating(ref.dtype)):
        return 0.0 if np.array_equal(out, ref) else float("inf")
    ref64 = ref.astype(np.float64)
    out64 = out.astype(np.float64)
    finite = np.isfinite(ref64)
    if np.any(~np.isfinite(out64[finite])):
        return float("inf")
    if np.any(finite != np.isfinite(out64)) or np.any(out64[~finite] != ref64[~finite]):
        return float("inf")
    if not finite.any():
        return 0.0
    scale = max(float(np.max(np.abs(ref64[finite]))), 1e-6)
    return float(np.max(np.abs(out64[finite] - ref64[finite]))) / scale


# Explicit mantissa bits of the 16-bit floats: one unit in the last place of x is 2^(exponent(x) - bits).
MANTISSA_BITS: Mapping[DType, int] = MappingProxyType({DType.FLOAT16: 10, DType.BFLOAT16: 7})


def ulps_apart(out: np.ndarray, emulated: np.ndarray, dtype: DType) -> np.ndarray:
    """How many units in the last place of `dtype` (at the emulated value's magnitude) each element of a
    reduced-precision kernel's `out` is from the emulating reference's: 0 where they agree bit for bit.

    A kernel and its emulation make the same roundings, but their float32 sums differ in their last bits
    (summation order), so where the exact sum lies within that of a rounding boundary the two round to
    neighbours: one ulp apart, rarely. Anything more is a wrong kernel."""
    if dtype not in MANTISSA_BITS:
        raise CnnCompileError(f"ulps are counted for the 16-bit floats, not {dtype.value}")
    ours = np.asarray(out).astype(np.float64)
    theirs = np.asarray(emulated).astype(np.float64)
    smallest = float(np.finfo(np.float16).smallest_subnormal) if dtype is DType.FLOAT16 else 2.0 ** -133
    exponent = np.floor(np.log2(np.maximum(np.abs(theirs), np.finfo(np.float64).tiny)))
    ulp = np.maximum(2.0 ** (exponent - MANTISSA_BITS[dtype]), smallest)
    return np.abs(ours - theirs) / ulp
