"""cnncompile's fused ops: a convolution or a per-channel affine with its epilogue.

The fusion passes produce them; nothing imports them from ONNX. Each carries its epilogue
as typed attributes (an `Activation` and that activation's own attributes) and, for the
conv, an optional residual input, so a backend reads what to generate from the node
itself. Their kernels are the unfused kernels run back to back: the Conv kernel, then the
residual add, then the activation op's kernel, so a fused node computes exactly what the
ops it replaced computed. `expand` spells a fused node out as those standard ops again,
which is how it exports to ONNX.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import TypeVar
from dataclasses import dataclass, fields

import numpy as np

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec, applicable, why_not, why_not_layout
from cnncompile.algorithms.reference import convolve
from cnncompile.errors import ShapeError
from cnncompile.ir.graph import Node, Value
from cnncompile.ir.types import Layout, TensorType, canonical_layout
from cnncompile.ops.conv import Conv, ConvAttrs
from cnncompile.ops.elementwise import (
    Add, Clip, ClipAttrs, Gelu, GeluAttrs, HardSigmoid, HardSigmoidAttrs, HardSwish, Identity, LeakyRelu,
    LeakyReluAttrs, Mul, Relu, Sigmoid, Tanh,
)
from cnncompile.ops.layout import LayoutTransform
from cnncompile.ops.registry import ANY_LAYOUT, NoAttrs, OpDef, OpLayouts, declare

DOMAIN = "cnncompile"
T = TypeVar("T")


class Activation(enum.Enum):
    """The activation an epilogue applies, named after the ONNX op it stands for.

    SiLU has no ONNX op of its own: it is x * Sigmoid(x), which exporters emit as two nodes.
    """

    NONE = "none"
    RELU = "Relu"
    CLIP = "Clip"
    LEAKY_RELU = "LeakyRelu"
    SIGMOID = "Sigmoid"
    HARD_SIGMOID = "HardSigmoid"
    HARD_SWISH = "HardSwish"
    SILU = "SiLU"
    GELU = "Gelu"
    TANH = "Tanh"


# The op whose kernel (and attributes) each activation reuses; SiLU multiplies Sigmoid's result by x.
ACTIVATION_OPS: dict[Activation, OpDef] = {
    Activation.RELU: Relu, Activation.CLIP: Clip, Activation.LEAKY_RELU: LeakyRelu,
    Activation.SIGMOID: Sigmoid, Activation.HARD_SIGMOID: HardSigmoid, Activation.HARD_SWISH: HardSwish,
    Activation.SILU: Sigmoid, Activation.GELU: Gelu, Activation.TANH: Tanh,
}

ActivationAttrs = NoAttrs | ClipAttrs | LeakyReluAttrs | HardSigmoidAttrs | GeluAttrs


@dataclass(frozen=True)
class EpilogueAttrs:
    """What runs on each output element after the main computation: an activation and its parameters."""

    activation: Activation = Activation.NONE
    activation_attrs: ActivationAttrs = NoAttrs()


def _check_epilogue(op: str, activation: Activation, activation_attrs: object) -> None:
    """The parameters must be the activation op's own attrs (NoAttrs for none, Relu, SiLU, ...)."""
    want = NoAttrs if activation is Activation.NONE else ACTIVATION_OPS[activation].attrs
    if type(activation_attrs) is not want:
        raise ShapeError(f"{op}: activation {activation.value} takes {want.__name__}, "
                         f"got {type(activation_attrs).__name__}")


def apply_activation(y: np.ndarray, activation: Activation, activation_attrs: object) -> np.ndarray:
    """The activation's own kernel applied to `y`."""
    if activation is Activation.NONE:
        return y
    result = ACTIVATION_OPS[activation].run([y], activation_attrs)[0]
    return y * result if activation is Activation.SILU else result


def activation_flops(activation: Activation, activation_attrs: object, t: TensorType) -> int:
    if activation is Activation.NONE:
        return 0
    flops = ACTIVATION_OPS[activation].flops([t], [t], activation_attrs)
    return flops + t.numel if activation is Activation.SILU else flops


# -- FusedConv ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FusedConvAttrs(EpilogueAttrs, ConvAttrs):
    """Conv's attributes, the epilogue (activation(conv(X, W) + B + Z)), then how to compute it.

    `algorithm` is the convolution algorithm, which must apply to the workload; `layout`
    the layout Y is produced in (None: channels-first, as ONNX has it, NCHW its other
    spelling); `tile` the schedule parameters a tuning run chose for the backend, empty for
    the target's own choice.
    """

    algorithm: ConvAlgorithm = ConvAlgorithm.DIRECT
    layout: Layout | None = None
    tile: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", canonical_layout(self.layout))


def conv_attrs(attrs: ConvAttrs) -> ConvAttrs:
    """The plain Conv attributes of a Conv's or a FusedConv's attrs."""
    return ConvAttrs(**{f.name: getattr(attrs, f.name) for f in fields(ConvAttrs)})


def _fused_conv_shape(x: TensorType, w: TensorType, b: TensorType, z: TensorType | None = None, *,
                      activation: Activation, activation_attrs: object, algorithm: ConvAlgorithm,
                      layout: Layout | None, tile: tuple[int, ...], **conv) -> TensorType:
    _check_epilogue("FusedConv", activation, activation_attrs)
    y = Conv.shape_rule(x, w, b, **conv)
    if z is not None and (z.shape != y.shape or z.dtype != y.dtype):
        raise ShapeError(f"FusedConv: residual Z {z} must match the conv's output {y}")
    spec = ConvSpec.of(x, w, **conv)
    reason = why_not(algorithm, spec)
    if reason is not None:
        raise ShapeError(f"FusedConv: algorithm {algorithm.value} does not apply: {reason}; "
                         f"choose one of {', '.join(a.value for a in applicable(spec))}")
    reason = why_not_layout(algorithm, layout, x, y.shape)
    if reason is not None:
        raise ShapeError(f"FusedConv: layout {layout}: {reason}")
    if z is not None and z.layout != layout:
        raise ShapeError(f"FusedConv: residual Z is stored as {z.layout or 'NCHW'}, the output as {layout or 'NCHW'}")
    return TensorType(y.shape, y.dtype, layout)


def _fused_conv_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: FusedConvAttrs) -> int:
    """The conv's, one add per element for the residual, and the activation's."""
    y = outputs[0]
    residual = y.numel if residual_of(inputs) is not None else 0
    return Conv.flops(conv_operands(inputs), outputs, conv_attrs(attrs)) + residual \
        + activation_flops(attrs.activation, attrs.activation_attrs, y)


# X and the residual Z may come in a layout; the algorithm's `why_not_layout` and the shape
# rule decide which, against `layout`, the layout Y is written in.
@declare("FusedConv", FusedConvAttrs, inputs=("X", "W", "B", "Z?"), shape=_fused_conv_shape,
         flops=_fused_conv_flops, domain=DOMAIN, layouts=OpLayouts(ANY_LAYOUT, ("X", "Z"), follow=False))
def FusedConv(x, w, b, z=None, *, activation, activation_attrs, algorithm, layout, tile, **conv):
    """Conv with its epilogue: activation(Conv(X, W, B) + Z), Z the optional residual, computed by its algorithm."""
    y = convolve(algorithm, x, w, **conv) + b.reshape(-1, *(1,) * (x.ndim - 2))
    if z is not None:
        y = y + z
    return apply_activation(y, activation, activation_attrs)


def residual_of(inputs: Sequence[T]) -> T | None:
    """A FusedConv's residual Z among its inputs (values, types or arrays); None when it has none."""
    return FusedConv.operand(inputs, "Z")


def conv_operands(inputs: Sequence[T]) -> Sequence[T]:
    """A FusedConv's X, W and B: the operands of the Conv it computes."""
    return inputs[:FusedConv.operand_index("Z")]


# -- ChannelAffine --------------------------------------------------------------------------


def _channel_affine_shape(x: TensorType, scale: TensorType, shift: TensorType, *, activation: Activation,
                          activation_attrs: object) -> TensorType:
    _check_epilogue("ChannelAffine", activation, activation_attrs)
    if x.rank < 2:
        raise ShapeError(f"ChannelAffine needs X of rank >= 2 (N, C, ...), got {x}")
    want = (x.shape[1], *(1,) * (x.rank - 2))
    for name, t in (("scale", scale), ("shift", shift)):
        if t.shape != want or not x.dtype.takes_parameter(t.dtype):
            raise ShapeError(f"ChannelAffine: {name} {t} must be {x.dtype.value}{list(want)}, one value per "
                             f"channel of X {x}, shaped to broadcast along its trailing dims")
    return x


def _channel_affine_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: EpilogueAttrs) -> int:
    """A multiply and an add per element, then the activation's."""
    y = outputs[0]
    return 2 * y.numel + activation_flops(attrs.activation, attrs.activation_attrs, y)


@declare("ChannelAffine", EpilogueAttrs, inputs=("X", "scale", "shift"), shape=_channel_affine_shape,
         flops=_channel_affine_flops, domain=DOMAIN, layouts=OpLayouts(ANY_LAYOUT, ("X",)))
def ChannelAffine(x, scale, shift, *, activation, activation_attrs):
    """activation(X * scale + shift), scale and shift per channel: inference BatchNorm in its folded form."""
    return apply_activation(x * scale + shift, activation, activation_attrs)


# -- back to standard ops -------------------------------------------------------------------


def expand(node: Node, fresh: Callable[[str], str]) -> list[Node]:
    """The standard-op nodes a cnncompile node stands for, the last one producing the node's own output.

    FusedConv becomes Conv, Add (the residual) and the activation; ChannelAffine becomes
    Mul, Add and the activation; SiLU becomes Sigmoid and Mul. A LayoutTransform, the
    identity on logical values, becomes Identity. What says how to compute (algorithm,
    layout, tile) is no ONNX attribute and is left behind. The first node keeps the
    fused node's name; `fresh` names the others and the intermediate values.
    """
    (out,) = node.outputs
    if node.op is LayoutTransform:
        return [Node(Identity, list(node.inputs), [out], NoAttrs(), node.name)]
    nodes: list[Node] = []

    def emit(op: OpDef, inputs: list[Value], attrs: object) -> Value:
        value = Value(fresh(f"{node.name}_{op.name.lower()}"), out.type)
        nodes.append(Node(op, inputs, [value], attrs, fresh(f"{node.name}_{op.name.lower()}") if nodes else node.name))
        return value

    if node.op is FusedConv:
        y = emit(Conv, list(conv_operands(node.inputs)), conv_attrs(node.attrs))
        residual = residual_of(node.inputs)
        if residual is not None:
            y = emit(Add, [y, residual], NoAttrs())
    elif node.op is ChannelAffine:
        y = emit(Add, [emit(Mul, node.inputs[:2], NoAttrs()), node.inputs[2]], NoAttrs())
    else:
        raise ValueError(f"{node.op.name} is not a fused op")
    activation = node.attrs.activation
    if activation is Activation.SILU:
        y = emit(Mul, [y, emit(Sigmoid, [y], NoAttrs())], NoAttrs())
    elif activation is not Activation.NONE:
        y = emit(ACTIVATION_OPS[activation], [y], node.attrs.activation_attrs)
    nodes[-1].outputs = [out]
    return nodes
