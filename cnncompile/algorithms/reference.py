"""Each convolution algorithm in NumPy, so that its numerics are checked against `direct`."""

from __future__ import annotations

import numpy as np

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.ops.conv import Conv


def convolve(algorithm: ConvAlgorithm, x: np.ndarray, w: np.ndarray, **conv) -> np.ndarray:
    """conv(X, W) without bias by `algorithm`; `conv` holds Conv's attributes."""
    return Conv.kernel(x, w, None, **conv)
