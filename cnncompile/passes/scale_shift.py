"""Per-channel Mul and Add by constants, folded into the conv or ChannelAffine beside them.

A constant that varies only along the channel axis (shape [C,1,1], [1,C,1,1] or a scalar)
scales or shifts each channel on its own, which a conv's weights and bias already do per
output channel (batchnorm.py derives the algebra):

    conv(x, W, b) * s = conv(x, W * s[m], b * s)       conv(x, W, b) + t = conv(x, W, b + t)
    affine(x) * s = x * (scale * s) + shift * s        affine(x) + t = x * scale + (shift + t)

Before a conv, scaling input channel i scales every weight that reads it:
conv(x * s, W) = conv(x, W * s[i]), exact even with zero padding, since a padded zero
scaled is still zero. With G groups, output channel m of group g reads input channels
g * C/G ... (g + 1) * C/G - 1 through W[m, 0 .. C/G - 1]. A shift before the conv adds
sum_{i,k} W[m, i, k] * t[i] to output m, but only when every window lies inside the
input: padding zeros are not shifted, so a padded conv refuses it.
"""

from __future__ import annotations

import numpy as np

from cnncompile.algorithms.windows import AutoPad
from cnncompile.ir.graph import Value
from cnncompile.ir.types import TensorType
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Mul
from cnncompile.ops.fused import Activation, ChannelAffine
from cnncompile.passes import pattern as P
from cnncompile.passes.batchnorm import along
from cnncompile.passes.pattern import Match, RuleCheck


def per_channel(array: np.ndarray, like: TensorType) -> np.ndarray | None:
    """The [C] vector a constant broadcast against an (N, C, ...) tensor stands for, if it varies along C only."""
    rank, channels = like.rank, like.shape[1]
    if array.ndim > rank:
        return None
    full = array.reshape((1,) * (rank - array.ndim) + array.shape)
    if any(d != 1 for axis, d in enumerate(full.shape) if axis != 1) or full.shape[1] not in (1, channels):
        return None
    return np.broadcast_to(full.reshape(-1), (channels,))


def _per_channel_of(name: str) -> RuleCheck:
    """A check that the constant 'k' is per-channel for the value bound to `name`."""

    def check(m: Match) -> str | None:
        k, y = m["k"], m[name]
        if per_channel(m.const("k"), y.type) is None:
            return f"constant %{k.name} {k.type} varies along more than the channel axis of %{y.name} {y.type}"
        return None

    return check


def _bias(m: Match) -> np.ndarray:
    b = m.const("b")
    return np.zeros(m["w"].type.shape[0], m["w"].type.dtype.numpy) if b is None else b


def _conv(m: Match, w: np.ndarray, b: np.ndarray) -> list[Value]:
    conv = m.node("conv")
    dtype = m["w"].type.dtype.numpy
    return m.add_node(Conv, [m["x"], m.add_constant(w.astype(dtype), f"{conv.name}_weight"),
                             m.add_constant(b.astype(dtype), f"{conv.name}_bias")], conv.attrs, name=conv.name)


# -- after a conv -----------------------------------------------------------------------------

CONV = P.op(Conv, P.var("x"), P.const("w", single_use=True), P.opt(P.const("b", single_use=True)),
            name="conv", single_use=True)


@P.rule(P.op(Mul, CONV, P.const("k")), check=_per_channel_of("conv"))
def scale_after_conv(m: Match) -> list[Value]:
    """Conv -> Mul by a per-channel constant: the weights and bias scale instead."""
    s = per_channel(m.const("k"), m["conv"].type)
    w = m.const("w")
    return _conv(m, w * along(s, 0, w.ndim), _bias(m) * s)


@P.rule(P.op(Add, CONV, P.const("k")), check=_per_channel_of("conv"))
def shift_after_conv(m: Match) -> list[Value]:
    """Conv -> Add of a per-channel constant: the bias grows instead."""
    return _conv(m, m.const("w"), _bias(m) + per_channel(m.const("k"), m["conv"].type))


# -- after a ChannelAffine --------------------------------------------------------------------

NO_ACTIVATION = P.where(lambda attrs: attrs.activation is Activation.NONE,
                        "it applies an activation, which a scale or shift after it does not commute with")
AFFINE = P.op(ChannelAffine, P.var("x"), P.const("scale", single_use=True), P.const("shift", single_use=True),
              name="affine", single_use=True, attrs=NO_ACTIVATION)


def _affine(m: Match, scale: np.ndarray, shift: np.ndarray) -> list[Value]:
    node = m.node("affine")
    dtype = m["x"].type.dtype.numpy
    return m.add_node(ChannelAffine, [m["x"], m.add_constant(scale.astype(dtype), f"{node.name}_scale"),
                                      m.add_constant(shift.astype(dtype), f"{node.name}_shift")], node.attrs,
                      name=node.name)


@P.rule(P.op(Mul, AFFINE, P.const("k")), check=_per_channel_of("affine"))
def scale_after_affine(m: Match) -> list[Value]:
    """ChannelAffine -> Mul by a per-channel constant: its scale and shift scale instead."""
    scale = m.const("scale")
    s = per_channel(m.const("k"), m["affine"].type).reshape(scale.shape)
    return _affine(m, scale * s, m.const("shift") * s)


@P.rule(P.op(Add, AFFINE, P.const("k")), check=_per_channel_of("affine"))
def shift_after_affine(m: Match) -> list[Value]:
    """ChannelAffine -> Add of a per-channel constant: its shift grows instead."""
    shift = m.const("shift")
    return _affine(m, m.const("scale"), shift + per_channel(m.const("k"), m["affine"].type).reshape(shift.shape))


# -- before a conv ----------------------------------------------------------------------------


def _before_conv(op) -> P.Op:
    return P.op(Conv, P.op(op, P.var("x"), P.const("k"), name="pre", single_use=True),
                P.const("w", single_use=True), P.opt(P.const("b", single_use=True)), name="conv")


def _per_input_channel(m: Match) -> np.ndarray:
    """The constant's [C] vector laid out like W (M, C/G, 1...): the value each weight's input channel gets."""
    w = m["w"].type.shape
    group = m.node("conv").attrs.group
    v = per_channel(m.const("k"), m["x"].type).reshape(group, 1, w[1])
    return np.broadcast_to(v, (group, w[0] // group, w[1])).reshape(w[0], w[1], *(1,) * (len(w) - 2))


@P.rule(_before_conv(Mul), check=_per_channel_of("x"))
def scale_before_conv(m: Match) -> list[Value]:
    """Mul by a per-channel constant -> Conv: the weights reading each input channel scale instead."""
    return _conv(m, m.const("w") * _per_input_channel(m), _bias(m))


def _unpadded_and_per_channel(m: Match) -> str | None:
    attrs = m.node("conv").attrs
    if attrs.auto_pad in (AutoPad.SAME_UPPER, AutoPad.SAME_LOWER) or (
            attrs.auto_pad is AutoPad.NOTSET and any(attrs.pads or ())):
        return "the conv pads with zeros, which a shift before it would not reach"
    return _per_channel_of("x")(m)


@P.rule(_before_conv(Add), check=_unpadded_and_per_channel)
def shift_before_conv(m: Match) -> list[Value]:
    """Add of a per-channel constant -> unpadded Conv: each output gains sum(W * shift), folded into the bias."""
    w = m.const("w").astype(np.float64)
    return _conv(m, m.const("w"), _bias(m) + (w * _per_input_channel(m)).sum(axis=tuple(range(1, w.ndim))))


SCALE_SHIFT_RULES = [scale_after_conv, shift_after_conv, scale_after_affine, shift_after_affine,
                     scale_before_conv, shift_before_conv]
