"""The op registry: every op cnncompile knows, each declared once.

Importing this package imports every op family, so `REGISTRY` is complete.
"""

from cnncompile.ops import (  # noqa: F401
    conv, elementwise, fused, generate, indexing, layout, linalg, logic, math, norm, pool, qlinear, quantize,
    ranking, reduce, resize, sampling, shape, tensor,
    attention,
)
from cnncompile.ops.registry import REGISTRY, NoAttrs, OpDef, declare, lookup

__all__ = ["REGISTRY", "NoAttrs", "OpDef", "declare", "lookup"]
