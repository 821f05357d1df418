"""Values stored in a layout: index maps between logical (N, C, H, W) and physical positions.

The IR's shapes are logical; the TVM backend stores each value in its `TensorType.layout`,
so a kernel's placeholders and outputs have the physical shape (`Layout.physical_shape`).
A lowering that reads a value by its logical position (a per-channel scale, a layout
change) goes through `physical_index` / `logical_index`. NCHW is no layout (None).

LayoutTransform is lowered here: each output element is read from the input element at
the same logical position, whatever pair of layouts it converts between.
"""

from __future__ import annotations

from collections.abc import Sequence

from tvm import te, tirx

from cnncompile.backends.tvm.kernel import PAD_STAGE, Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.ir.types import Layout, LayoutKind, TensorType
from cnncompile.ops.layout import LayoutTransform
from cnncompile.ops.registry import OpDef

Index = Sequence[tirx.Expr]


def physical_shape(t: TensorType) -> tuple[int, ...]:
    layout = t.layout
    return t.shape if layout is None else layout.physical_shape(t.shape)


def physical_index(layout: Layout | None, index: Index) -> tuple[tirx.Expr, ...]:
    """Where logical position (n, c, h, w) lies in a tensor stored in `layout`."""
    if layout is None:
        return tuple(index)
    n, c, h, w = index
    if layout.kind is LayoutKind.NHWC:
        return (n, h, w, c)
    return (n, c // layout.block, h, w, c % layout.block)


def logical_index(layout: Layout | None, index: Index) -> tuple[tirx.Expr, ...]:
    """The logical position (n, c, h, w) of physical position `index` in `layout`."""
    if layout is None:
        return tuple(index)
    if layout.kind is LayoutKind.NHWC:
        n, h, w, c = index
        return (n, c, h, w)
    n, outer, h, w, inner = index
    return (n, outer * layout.block + inner, h, w)


def spatial_axes(layout: Layout | None, rank: int) -> tuple[int, ...]:
    """The physical axes of the spatial dims (H, W, ...) of a rank-`rank` logical tensor."""
    if layout is None:
        return tuple(range(2, rank))
    return (1, 2) if layout.kind is LayoutKind.NHWC else (2, 3)


def channel_axis(layout: Layout | None) -> int:
    """The physical axis that orders channels (NCHWc: the outer block index)."""
    return 3 if layout is not None and layout.kind is LayoutKind.NHWC else 1


def pad_spatial(x: te.Tensor, layout: Layout | None, begin: Sequence[int], end: Sequence[int], fill: tirx.Expr,
                name: str = PAD_STAGE) -> te.Tensor:
    """x (stored in `layout`) padded with `fill` on its spatial axes; x itself when nothing is padded."""
    if not any(begin) and not any(end):
        return x
    shape = list(shape_of(x))
    axes = spatial_axes(layout, len(begin) + 2)
    for axis, b, e in zip(axes, begin, end):
        shape[axis] += b + e

    def read(*index):
        source = list(index)
        inside = []
        for axis, b, size in zip(axes, begin, (shape_of(x)[a] for a in axes)):
            source[axis] = index[axis] - b
            inside.append(tirx.all(index[axis] >= b, index[axis] < b + size))
        return tirx.if_then_else(tirx.all(*inside), x[tuple(source)], fill)

    return te.compute(tuple(shape), read, name=name)


def _layout_transform(call: Call) -> Kernel:
    (x,) = call.inputs
    source, target = call.in_types[0].layout, call.out_types[0].layout

    def read(*index):
        return x[physical_index(source, logical_index(target, index))]

    return Kernel([te.compute(physical_shape(call.out_types[0]), read, name="y")], KernelKind.INJECTIVE)


LOWERINGS: dict[OpDef, Lowering] = {LayoutTransform: Lowering(_layout_transform)}
