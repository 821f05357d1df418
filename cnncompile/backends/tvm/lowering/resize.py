"""Resize: one 1-D resampling stage per resized axis, as the reference does it.

Source indices and blend weights depend only on the sizes and attributes, and whether a
nearest-mode coordinate such as 1.9999999 rounds up or down depends on computing it in
float32 exactly as the reference (and onnxruntime) does; so they are computed in NumPy
by the op's own functions (`plan`, `source_coords`) and bound to the kernel as tables.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import const
from cnncompile.ops import resize as resize_ops
from cnncompile.ops.registry import OpDef, attr_dict
from cnncompile.ops.resize import CoordinateTransformationMode, ResizeMode


def _along(source: te.Tensor, axis: int, index: tuple, position: tirx.Expr) -> tirx.Expr:
    return source[(*index[:axis], position, *index[axis + 1:])]


def _nearest(y: te.Tensor, axis: int, index: te.Tensor, shape: list[int]) -> te.Tensor:
    return te.compute(shape, lambda *i: _along(y, axis, i, index[i[axis]]), name=f"axis{axis}")


def _linear(y: te.Tensor, axis: int, low: te.Tensor, high: te.Tensor, weight: te.Tensor,
            shape: list[int]) -> te.Tensor:
    """y[low] * (1 - w) + y[high] * w along `axis`, the reference's blend."""

    def blend(*i):
        w = weight[i[axis]]
        return _along(y, axis, i, low[i[axis]]) * (const(1, y.dtype) - w) + _along(y, axis, i, high[i[axis]]) * w

    return te.compute(shape, blend, name=f"axis{axis}")


def _extrapolate(y: te.Tensor, outside: list[tuple[int, te.Tensor]], fill: tirx.Expr) -> te.Tensor:
    """tf_crop_and_resize: positions whose source lies outside the input on any axis get `fill`."""

    def pick(*i):
        return tirx.if_then_else(tirx.any(*(mask[i[a]] for a, mask in outside)), fill, y[i])

    return te.compute(shape_of(y), pick, name="extrapolate")


def _resize(call: Call) -> Kernel:
    (x,) = call.inputs
    attrs = call.attrs
    kernel = Kernel([], KernelKind.INJECTIVE)
    transform = attrs.coordinate_transformation_mode
    y = x
    outside = []
    for p in resize_ops.plan(shape_of(x), **attr_dict(attrs)):
        coords = resize_ops.source_coords(p, transform)
        shape = list(shape_of(y))
        shape[p.axis] = p.length_out
        if transform is CoordinateTransformationMode.TF_CROP_AND_RESIZE:
            outside.append((p.axis, kernel.table((coords < 0) | (coords > p.length_in - 1), f"outside{p.axis}")))
        if attrs.mode is ResizeMode.NEAREST:
            index = resize_ops._nearest_index(coords, attrs.nearest_mode, p.length_in).astype(np.int32)
            y = _nearest(y, p.axis, kernel.table(index, f"index{p.axis}"), shape)
            continue
        clamped = np.clip(coords, 0, p.length_in - 1)
        low = np.floor(clamped).astype(np.int32)
        y = _linear(y, p.axis, kernel.table(low, f"low{p.axis}"),
                    kernel.table(np.minimum(low + 1, p.length_in - 1), f"high{p.axis}"),
                    kernel.table((clamped - low).astype(str(x.dtype)), f"weight{p.axis}"), shape)
    if outside:
        y = _extrapolate(y, outside, const(attrs.extrapolation_value, x.dtype))
    if y is x:
        y = te.compute(shape_of(x), lambda *i: x[i], name="copy")
    kernel.outputs.append(y)
    return kernel


LOWERINGS: dict[OpDef, Lowering] = {resize_ops.Resize: Lowering(_resize)}
