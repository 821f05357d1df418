"""LayoutTransform: where a value changes how it is stored.

Shapes in the IR are logical, so the transform is the identity on values: the reference
returns its input, and only a backend, which stores each value in its layout, moves data.
It exports to ONNX as Identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnncompile.errors import ShapeError
from cnncompile.ir.types import Layout, TensorType, canonical_layout
from cnncompile.ops.registry import ANY_LAYOUT, OpLayouts, declare

DOMAIN = "cnncompile"


@dataclass(frozen=True)
class LayoutTransformAttrs:
    """The layout Y is stored in; None is the logical (channels-first) order, NCHW its other spelling."""

    layout: Layout | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", canonical_layout(self.layout))


def _layout_transform_shape(x: TensorType, *, layout: Layout | None) -> TensorType:
    if layout is not None and not layout.holds(x.shape):
        raise ShapeError(f"LayoutTransform: {x} cannot be stored as {layout}")
    return TensorType(x.shape, x.dtype, layout)


@declare("LayoutTransform", LayoutTransformAttrs, shape=_layout_transform_shape, flops=lambda i, o, a: 0,
         domain=DOMAIN, layouts=OpLayouts(ANY_LAYOUT, follow=False))
def LayoutTransform(x, *, layout):
    """X stored in another layout: the same logical tensor."""
    return x
