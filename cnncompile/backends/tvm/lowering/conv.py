"""Convolutions: Conv, FusedConv (conv + bias + residual + activation in one kernel), ConvTranspose.

A conv node is lowered from its plan (backends/tvm/plan.py): the plan says which kernel
it is (algorithm, layouts, template, weight form, tile), and conv_algorithms/ has one
compute per algorithm that builds it. Every kernel ends in the epilogue (bias, residual,
activation) as one element-wise stage, which the schedules compute while the accumulator
tile is still in registers where the layout allows, so a FusedConv never writes its raw
conv result.

ConvTranspose is the direct conv run over its input with zeros inserted between pixels
(the stride) and the kernel flipped: y[u] = sum_k x[(u + pb - k*d) / s] W[k] over the k
where that division is exact, which is the direct conv of the dilated, re-padded input
with W[K-1-k] (a `w_flip` stage the schedule inlines), with its channels transposed.
"""

from __future__ import annotations

from dataclasses import replace

from tvm import te, tirx

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec
from cnncompile.backends.tvm.kernel import DILATE_STAGE, W_FLIP_STAGE, Call, Kernel, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import const
from cnncompile.backends.tvm.lowering.conv_algorithms import ConvProblem, lower_planned
from cnncompile.backends.tvm.lowering.epilogue import Epilogue
from cnncompile.backends.tvm.plan import ConvPlan, ConvRequest, plan_conv
from cnncompile.ir.types import TensorType
from cnncompile.ops.conv import Conv, ConvTranspose, _transpose_window
from cnncompile.ops.fused import FusedConv, conv_attrs, residual_of
from cnncompile.ops.registry import OpDef, attr_dict


def conv_request(call: Call) -> ConvRequest:
    """What a Conv or FusedConv node asks of the backend, read off its call."""
    x_type, w_type = call.in_types[:2]
    attrs = call.attrs
    logical = TensorType(x_type.shape, x_type.dtype)
    spec = ConvSpec.of(logical, w_type, **attr_dict(conv_attrs(attrs)))
    return ConvRequest(spec, getattr(attrs, "algorithm", ConvAlgorithm.DIRECT), x_type.layout,
                       call.out_types[0].layout, tuple(getattr(attrs, "tile", ())), call.constant[1])


def _forward(call: Call) -> Kernel:
    """A Conv: the conv and its bias."""
    return _planned(call, Epilogue(Conv.operand(call.inputs, "B")))


def _fused(call: Call) -> Kernel:
    attrs = call.attrs
    return _planned(call, Epilogue(FusedConv.operand(call.inputs, "B"), residual_of(call.inputs), attrs.activation,
                                   attrs.activation_attrs))


def _planned(call: Call, epilogue: Epilogue) -> Kernel:
    plan = plan_conv(conv_request(call), call.target)
    return lower_planned(ConvProblem(call, plan, _storing(epilogue, plan)))


def _storing(epilogue: Epilogue, plan: ConvPlan) -> Epilogue:
    """The epilogue rounding to the plan's output type where the conv accumulates in a wider one."""
    types = plan.types
    return epilogue if types.output is types.accumulator else replace(epilogue, store=types.output.value)


def _transposed(call: Call) -> Kernel:
    x, w, *rest = call.inputs
    bias = ConvTranspose.operand(call.inputs, "B")
    window = _transpose_window(shape_of(x), shape_of(w), attr_dict(call.attrs))
    spatial = shape_of(x)[2:]
    # the dilated input, re-padded so that output u reads positions u .. u + extent - 1
    offsets = [(k - 1) * d - b for k, d, b in zip(window.kernel, window.dilations, window.pads_begin)]
    lengths = tuple(o + (k - 1) * d for o, k, d in zip(window.out, window.kernel, window.dilations))

    def dilate(n, c, *q):
        shifted = [qi - off for qi, off in zip(q, offsets)]
        hit = tirx.all(*(tirx.all(t >= 0, tirx.floormod(t, s) == 0, tirx.floordiv(t, s) < size)
                         for t, s, size in zip(shifted, window.strides, spatial)))
        source = x[(n, c, *(tirx.floordiv(t, s) for t, s in zip(shifted, window.strides)))]
        return tirx.if_then_else(hit, source, const(0, x.dtype))

    dilated = te.compute((*shape_of(x)[:2], *lengths), dilate, name=DILATE_STAGE)
    group = call.attrs.group
    group_in, group_out = shape_of(x)[1] // group, shape_of(w)[1]
    out_channels = group * group_out
    flipped = te.compute((out_channels, group_in, *window.kernel), lambda o, c, *k: w[(
        (o // group_out) * group_in + c, o % group_out, *(size - 1 - r for size, r in zip(window.kernel, k)))],
        name=W_FLIP_STAGE)
    unit, none = (1,) * len(spatial), (0,) * len(spatial)
    x_type = TensorType((shape_of(x)[0], shape_of(x)[1], *lengths), call.in_types[0].dtype)
    w_type = TensorType(shape_of(flipped), call.in_types[1].dtype)
    spec = ConvSpec(x_type.shape[0], x_type.shape[1], out_channels, group, lengths, window.kernel, unit,
                    window.dilations, none, none, window.out, x_type.dtype)
    equivalent = replace(call, inputs=(dilated, flipped, *rest), in_types=(x_type, w_type, *call.in_types[2:]),
                         constant=(False, False, *call.constant[2:]))
    plan = plan_conv(ConvRequest(spec, weights_constant=False), call.target)
    return lower_planned(ConvProblem(equivalent, plan, _storing(Epilogue(bias), plan)))


LOWERINGS: dict[OpDef, Lowering] = {
    Conv: Lowering(_forward),
    FusedConv: Lowering(_fused),
    ConvTranspose: Lowering(_transposed),
}
