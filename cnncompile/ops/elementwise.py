"""Element-wise ops: activations and broadcasting arithmetic."""

from __future__ import annotations

import numpy as np

from cnncompile.ops.registry import broadcast, declare, per_output, same_as_first


@declare("Relu", shape=same_as_first, flops=per_output(1))
def Relu(x):
    """max(x, 0)."""
    return np.maximum(x, 0).astype(x.dtype, copy=False)


@declare("Add", inputs=("A", "B"), outputs=("C",), shape=broadcast, flops=per_output(1))
def Add(a, b):
    """A + B with multidirectional broadcasting."""
    return a + b
