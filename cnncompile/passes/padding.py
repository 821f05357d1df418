"""Pad folding: an explicit zero Pad before a conv becomes the conv's own padding.

Conv pads its input with zeros before sliding its window, so Pad(x, zeros, p) followed by
Conv(pads=q) slides the same window over the same zero-extended input as Conv(x, pads =
p + q): the extra node and the padded copy of x go. Only constant zero padding of the
spatial axes qualifies; reflect/edge/wrap padding, a non-zero fill, a crop (negative
pad) or padding of the batch or channel axes does not describe conv padding.
"""

from __future__ import annotations

from dataclasses import replace

from cnncompile.algorithms.windows import AutoPad
from cnncompile.ir.graph import Value
from cnncompile.ops.conv import Conv
from cnncompile.ops.fused import FusedConv
from cnncompile.ops.tensor import Pad, PadMode, pad_widths
from cnncompile.passes import pattern as P
from cnncompile.passes.pattern import Match

ZERO_FILL = P.where(lambda a: a.mode is PadMode.CONSTANT and a.constant_value == 0,
                    "only constant zero padding is conv padding")
NO_CROP = P.where(lambda a: min(a.pads) >= 0, "negative pads crop")
EXPLICIT = P.where(lambda a: a.auto_pad in (AutoPad.NOTSET, AutoPad.VALID),
                   "auto_pad SAME chooses its own padding")

PAD_THEN_CONV = P.op((Conv, FusedConv), P.op(Pad, P.var("x"), name="pad", attrs=[ZERO_FILL, NO_CROP]),
                     P.var("w"), P.opt(P.var("b")), P.opt(P.var("z")), name="conv", attrs=EXPLICIT)


def _spatial_only(m: Match) -> str | None:
    x = m["x"]
    widths = pad_widths(x.type.shape, m.node("pad").attrs.pads, m.node("pad").attrs.axes)
    if any(widths[0]) or any(widths[1]):
        return f"it pads the batch or channel axis of %{x.name} {x.type}"
    return None


@P.rule(PAD_THEN_CONV, check=_spatial_only)
def fold_pad_into_conv(m: Match) -> list[Value]:
    """Pad with zeros -> Conv: the conv's pads grow instead."""
    x, conv, pad = m["x"], m.node("conv"), m.node("pad")
    widths = pad_widths(x.type.shape, pad.attrs.pads, pad.attrs.axes)[2:]
    rank = len(widths)
    own = (0,) * (2 * rank) if conv.attrs.auto_pad is AutoPad.VALID else conv.attrs.pads or (0,) * (2 * rank)
    pads = tuple(o + w for o, w in zip(own, [b for b, _ in widths] + [e for _, e in widths]))
    attrs = replace(conv.attrs, pads=pads, auto_pad=AutoPad.NOTSET)
    return m.add_node(conv.op, [x, *conv.inputs[1:]], attrs, name=conv.name)


PAD_RULES = [fold_pad_into_conv]
