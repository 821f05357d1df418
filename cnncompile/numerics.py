"""The numerical policy every comparison in cnncompile uses (DESIGN.md).

Error is relative to the reference's largest magnitude, so one number judges a whole
tensor whatever its scale: max|out - ref| / max(max|ref|, 1e-6). NaN or Inf where the
reference is finite always fails.
"""

from __future__ import annotations

import numpy as np

# float32 by default; the conv algorithms whose transforms round more than a dot product
# does (Winograd's, the FFT's), by algorithm name.
TOLERANCE = {
    "float32": 1e-5,
    "winograd_f2x3": 1e-4,
    "winograd_f4x3": 1e-3,
    "fft": 1e-4,
    "float16": 1e-2,
}


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """The policy's error; inf when `out` is non-finite where `ref` is finite or shapes differ."""
    out = np.asarray(out)
    ref = np.asarray(ref)
    if out.shape != ref.shape:
        return float("inf")
    if out.size == 0:
        return 0.0
    if out.dtype == bool or ref.dtype == bool or not np.issubdtype(ref.dtype, np.number):
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
