"""Data movement and shape ops: every output element is one input element (or a constant).

Sizes come from the node's output types, which the op's shape rule already resolved;
where an op needs more of its definition (Slice's clamped ranges, Pad's widths) the op
module's own helpers are reused so the two layers cannot disagree.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import const
from cnncompile.backends.tvm.lowering.layouts import channel_axis, physical_shape
from cnncompile.ops import shape as shape_ops
from cnncompile.ops import tensor as tensor_ops
from cnncompile.ops.registry import OpDef, attr_dict
from cnncompile.ops.tensor import DepthToSpaceMode, PadMode


def _injective(*outputs: te.Tensor) -> Kernel:
    return Kernel(list(outputs), KernelKind.INJECTIVE)


def _axis(axis: int, rank: int) -> int:
    return axis % rank


def _concat(call: Call) -> Kernel:
    """Each output element from the one input whose slice along `axis` holds it.

    Inputs stored in a layout are joined on channels (axis 1), along the physical axis that
    orders them: NHWC's last, NCHWc's outer block index (each input holds whole blocks).
    """
    layout = call.out_types[0].layout
    rank = len(call.out_types[0].shape)
    axis = _axis(call.attrs.axis, rank) if layout is None else channel_axis(layout)
    ends = np.cumsum([shape_of(t)[axis] for t in call.inputs]).tolist()
    starts = [0, *ends[:-1]]

    def read(*index):
        position = index[axis]

        def element(k: int) -> tirx.Expr:
            return call.inputs[k][(*index[:axis], position - starts[k], *index[axis + 1:])]

        value = element(len(call.inputs) - 1)
        for k in reversed(range(len(call.inputs) - 1)):
            value = tirx.if_then_else(position < ends[k], element(k), value)
        return value

    return _injective(te.compute(physical_shape(call.out_types[0]), read, name="y"))


def _split(call: Call) -> Kernel:
    (x,) = call.inputs
    axis = _axis(call.attrs.axis, len(shape_of(x)))
    starts = np.cumsum([0] + [t.shape[axis] for t in call.out_types[:-1]]).tolist()
    return _injective(*(_shifted(x, axis, start, out.shape, f"y{k}")
                        for k, (start, out) in enumerate(zip(starts, call.out_types))))


def _shifted(x: te.Tensor, axis: int, start: int, shape: tuple[int, ...], name: str) -> te.Tensor:
    """out[..., i, ...] = x[..., start + i, ...] along `axis`."""
    return te.compute(shape, lambda *i: x[(*i[:axis], i[axis] + start, *i[axis + 1:])], name=name)


def _reshape(call: Call) -> Kernel:
    """Reshape, Flatten, Squeeze and Unsqueeze: the same elements in row-major order."""
    return _injective(topi.reshape(call.inputs[0], call.out_types[0].shape))


def _transpose(call: Call) -> Kernel:
    (x,) = call.inputs
    perm = call.attrs.perm or tuple(reversed(range(len(shape_of(x)))))
    return _injective(topi.transpose(x, list(perm)))


def _pad_source(position: tirx.Expr, kept: int, mode: PadMode) -> tirx.Expr:
    """Index into the kept (cropped) input for an output position `position` relative to its start."""
    if mode is PadMode.EDGE:
        return tirx.max(tirx.min(position, kept - 1), 0)
    if mode is PadMode.WRAP:
        return tirx.floormod(position, kept)
    if mode is PadMode.REFLECT:
        # the shape rule keeps each pad below kept, so one reflection at either end suffices
        mirrored = tirx.Select(position < 0, -position, position)
        return tirx.Select(mirrored >= kept, 2 * (kept - 1) - mirrored, mirrored)
    return position


def _pad(call: Call) -> Kernel:
    """Crop by negative pads, then pad by positive ones, per ONNX's four modes."""
    (x,) = call.inputs
    dims = shape_of(x)
    attrs = call.attrs
    widths = tensor_ops.pad_widths(dims, attrs.pads, attrs.axes)
    crop = [max(-b, 0) for b, _ in widths]
    kept = [d + min(b, 0) + min(e, 0) for d, (b, e) in zip(dims, widths)]
    grow = [max(b, 0) for b, _ in widths]

    def read(*index):
        relative = [i - g for i, g in zip(index, grow)]
        source = [c + _pad_source(r, k, attrs.mode) for r, k, c in zip(relative, kept, crop)]
        value = x[tuple(source)] if dims else x[()]
        if attrs.mode is not PadMode.CONSTANT or not dims:
            return value
        inside = tirx.all(*(tirx.all(r >= 0, r < k) for r, k in zip(relative, kept)))
        return tirx.if_then_else(inside, value, const(attrs.constant_value, x.dtype))

    return _injective(te.compute(call.out_types[0].shape, read, name="y"))


def _depth_to_space(call: Call) -> Kernel:
    (x,) = call.inputs
    b = call.attrs.blocksize
    channels = call.out_types[0].shape[1]

    def read(n, c, h, w):
        i, j = h % b, w % b
        if call.attrs.mode is DepthToSpaceMode.DCR:
            source = (i * b + j) * channels + c
        else:
            source = c * b * b + i * b + j
        return x[n, source, h // b, w // b]

    return _injective(te.compute(call.out_types[0].shape, read, name="y"))


def _gather(call: Call) -> Kernel:
    """Negative indices count from the end; out-of-range ones are clamped (the reference rejects them)."""
    data, indices = call.inputs
    rank = len(shape_of(data))
    axis = _axis(call.attrs.axis, rank)
    size = shape_of(data)[axis]
    k = len(shape_of(indices))

    def read(*index):
        raw = indices[index[axis:axis + k]] if k else indices[()]
        raw = raw.astype("int64")
        position = tirx.max(tirx.min(tirx.Select(raw < 0, raw + size, raw), size - 1), 0)
        return data[(*index[:axis], position, *index[axis + k:])]

    return _injective(te.compute(call.out_types[0].shape, read, name="y"))


def _slice(call: Call) -> Kernel:
    (x,) = call.inputs
    ranges = shape_ops._slice_ranges(shape_of(x), **attr_dict(call.attrs))
    return _injective(te.compute(call.out_types[0].shape,
                                 lambda *i: x[tuple(s + k * p for (s, _, k), p in zip(ranges, i))], name="y"))


def _from_table(array: np.ndarray) -> Kernel:
    """An output whose value is known at build time: a copy of a bound table."""
    kernel = Kernel([], KernelKind.INJECTIVE)
    table = kernel.table(array, "value")
    kernel.outputs.append(te.compute(array.shape, lambda *i: table[i], name="y"))
    return kernel


def _shape(call: Call) -> Kernel:
    return _from_table(shape_ops.Shape.run([np.empty(call.in_types[0].shape, np.uint8)], call.attrs)[0])


def _constant(call: Call) -> Kernel:
    return _from_table(shape_ops.Constant.run([], call.attrs)[0])


def _constant_of_shape(call: Call) -> Kernel:
    fill = shape_ops._fill_value(call.attrs.value)
    out = call.out_types[0]
    value = tirx.const(fill.item(), out.dtype.value)
    return _injective(te.compute(out.shape, lambda *i: value, name="y"))


LOWERINGS: dict[OpDef, Lowering] = {
    tensor_ops.Concat: Lowering(_concat),
    tensor_ops.Split: Lowering(_split),
    tensor_ops.Reshape: Lowering(_reshape),
    tensor_ops.Flatten: Lowering(_reshape),
    tensor_ops.Squeeze: Lowering(_reshape),
    tensor_ops.Unsqueeze: Lowering(_reshape),
    tensor_ops.Transpose: Lowering(_transpose),
    tensor_ops.Pad: Lowering(_pad),
    tensor_ops.DepthToSpace: Lowering(_depth_to_space),
    shape_ops.Gather: Lowering(_gather),
    shape_ops.Slice: Lowering(_slice),
    shape_ops.Shape: Lowering(_shape),
    shape_ops.Constant: Lowering(_constant),
    shape_ops.ConstantOfShape: Lowering(_constant_of_shape),
}
