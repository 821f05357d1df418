"""Epilogue fusion: the residual add and the activation after a conv run inside it.

A conv's output is written once and read back by the add and again by the activation;
fused, each output element is finished (+ bias, + residual, activation) while it is in
registers, and two full tensors never touch memory. The fused node is a FusedConv whose
epilogue is typed (ops/fused.py): activation(conv(x, W) + b + z). Because the order is
fixed, a residual add can join a conv only before its activation, and an activation only
once. ChannelAffine takes its activation the same way.

The rules, largest first (a rule's benefit is its pattern's size):

    Act(Add(conv, z))      conv + residual + activation        (ResNet's block end)
    Mul(conv, Sigmoid(conv))  conv + SiLU                       (EfficientNet, YOLO)
    Add(conv, z)           conv + residual                      (MobileNetV2's linear bottleneck)
    Act(conv)              conv + activation
    Act(affine), Mul(affine, Sigmoid(affine))   ChannelAffine + activation (pre-activation nets)

A residual z must have the conv's output shape (an add that broadcasts is not a residual).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnncompile.ir.graph import Value
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Mul, Sigmoid, Sum
from cnncompile.ops.fused import ACTIVATION_OPS, Activation, ChannelAffine, FusedConv, FusedConvAttrs, conv_attrs
from cnncompile.ops.registry import NoAttrs, attr_dict
from cnncompile.passes import pattern as P
from cnncompile.passes.pattern import Match, Rule

FUSIBLE = tuple(a for a in Activation if a is not Activation.NONE)


@dataclass(frozen=True)
class EpilogueOptions:
    """Which activations may fuse (a backend without a Gelu epilogue drops it), and whether residual adds may."""

    activations: tuple[Activation, ...] = FUSIBLE
    residual: bool = True


NO_ACTIVATION = P.where(lambda attrs: getattr(attrs, "activation", Activation.NONE) is Activation.NONE,
                        "it applies an activation already")


def _conv() -> P.Op:
    """A Conv, or a FusedConv with no activation yet; 'residual' is bound when it already adds one."""
    return P.op((Conv, FusedConv), P.var("x"), P.var("w"), P.opt(P.var("b")), P.opt(P.var("residual")),
                name="conv", single_use=True, attrs=NO_ACTIVATION)


def _no_residual_yet(m: Match) -> str | None:
    if m["residual"] is not None:
        return "the conv adds a residual already"
    z, y = m["z"], m["conv"]
    if z is y:
        return "it adds the conv's output to itself"
    if z.type.shape != y.type.shape:
        return f"%{z.name} {z.type} broadcasts against the conv's output {y.type}: not a residual"
    return None


def _fused_conv(m: Match, activation: Activation = Activation.NONE, activation_attrs: object = NoAttrs(),
                residual: Value | None = None) -> list[Value]:
    conv = m.node("conv")
    attrs = FusedConvAttrs(**attr_dict(conv_attrs(conv.attrs)), activation=activation,
                           activation_attrs=activation_attrs)
    bias = m["b"]
    if bias is None:
        w = m["w"].type
        bias = m.add_constant(np.zeros(w.shape[0], w.dtype.numpy), f"{conv.name}_bias")
    residual = residual or m["residual"]
    inputs = [m["x"], m["w"], bias, *([residual] if residual is not None else [])]
    return m.add_node(FusedConv, inputs, attrs, name=conv.name)


def _activation_of(m: Match) -> tuple[Activation, object]:
    act = m.node("act")
    return Activation(act.op.name), act.attrs


def _affine(m: Match, activation: Activation, activation_attrs: object) -> list[Value]:
    node = m.node("affine")
    return m.add_node(ChannelAffine, node.inputs, activation=activation, activation_attrs=activation_attrs,
                      name=node.name)


def epilogue_rules(options: EpilogueOptions = EpilogueOptions()) -> list[Rule]:
    """The fusion rules for the activations (and residual adds) that `options` allows."""
    named = tuple(ACTIVATION_OPS[a] for a in options.activations if a is not Activation.SILU)
    silu = Activation.SILU in options.activations
    conv = _conv()
    affine = P.op(ChannelAffine, P.var("x"), P.var("scale"), P.var("shift"), name="affine", single_use=True,
                  attrs=NO_ACTIVATION)
    residual_add = P.op((Add, Sum), conv, P.var("z"), name="add", single_use=True)

    @P.rule(P.op(named, residual_add, name="act"), check=_no_residual_yet)
    def conv_residual_activation(m: Match) -> list[Value]:
        """Conv -> Add(residual) -> activation becomes one FusedConv."""
        return _fused_conv(m, *_activation_of(m), residual=m["z"])

    @P.rule(P.op((Add, Sum), conv, P.var("z")), check=_no_residual_yet)
    def conv_residual(m: Match) -> list[Value]:
        """Conv -> Add(residual) becomes a FusedConv with a residual input."""
        return _fused_conv(m, residual=m["z"])

    @P.rule(P.op(named, conv, name="act"))
    def conv_activation(m: Match) -> list[Value]:
        """Conv -> activation becomes a FusedConv."""
        return _fused_conv(m, *_activation_of(m))

    @P.rule(P.op(Mul, conv, P.op(Sigmoid, conv, name="sigmoid", single_use=True)))
    def conv_silu(m: Match) -> list[Value]:
        """Conv -> x * Sigmoid(x) becomes a FusedConv with SiLU."""
        return _fused_conv(m, Activation.SILU)

    @P.rule(P.op(named, affine, name="act"))
    def affine_activation(m: Match) -> list[Value]:
        """ChannelAffine -> activation becomes one ChannelAffine."""
        return _affine(m, *_activation_of(m))

    @P.rule(P.op(Mul, affine, P.op(Sigmoid, affine, name="sigmoid", single_use=True)))
    def affine_silu(m: Match) -> list[Value]:
        """ChannelAffine -> x * Sigmoid(x) becomes one ChannelAffine with SiLU."""
        return _affine(m, Activation.SILU, NoAttrs())

    rules = [conv_activation, affine_activation] if named else []
    rules += [conv_silu, affine_silu] if silu else []
    if options.residual:
        rules += [conv_residual] + ([conv_residual_activation] if named else [])
    return rules
