"""Layers that keep the spatial layout: activations, normalisation, dropout, softmax.

Most are one registry op whose attributes are the layer's fields, so `unary_layer` makes
each from its op's declaration, defaults included; the rest (PReLU, SiLU, BatchNorm, LayerNorm,
LayerScale) also own weights or expand to a few nodes.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, ClassVar

from cnncompile.frontends.dsl.core import Builder, Init, Layer, join, require_channels
from cnncompile.ir.graph import Value
from cnncompile.ops import elementwise as E
from cnncompile.ops import norm as N
from cnncompile.ops import reduce as R
from cnncompile.ops import tensor as T
from cnncompile.ops.registry import OpDef


@dataclass(frozen=True)
class UnaryOp(Layer):
    """A layer that is exactly one op on its input; every field but `name` is an attribute of the op."""

    op: ClassVar[OpDef]

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        attrs = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}
        return b.node(self.op, [x], path, **attrs)


def unary_layer(op: OpDef, layer_name: str | None = None, doc: str | None = None,
                exposed: tuple[str, ...] | None = None, **defaults: Any) -> type:
    """A UnaryOp layer class whose fields are `op`'s attributes, so each is declared once, in the op.

    `exposed` limits the fields to the attributes a model builder sets (Dropout's ratio,
    not its training-only seed); `defaults` overrides the op's default where a layer's
    conventional one differs (Softmax over channels, LRN's AlexNet window).
    """
    hints = typing.get_type_hints(op.attrs)
    specs = [(f.name, hints[f.name], field(default=defaults.get(f.name, f.default)))
             for f in fields(op.attrs) if exposed is None or f.name in exposed]
    return make_dataclass(layer_name or op.name, specs, bases=(UnaryOp,), frozen=True,
                          namespace={"op": op, "__doc__": doc or op.doc, "__module__": __name__})


Relu = unary_layer(E.Relu)
LeakyRelu = unary_layer(E.LeakyRelu)
Elu = unary_layer(E.Elu)
Selu = unary_layer(E.Selu)
Sigmoid = unary_layer(E.Sigmoid)
Tanh = unary_layer(E.Tanh)
HardSigmoid = unary_layer(E.HardSigmoid)
HardSwish = unary_layer(E.HardSwish)
Gelu = unary_layer(E.Gelu)
Softplus = unary_layer(E.Softplus)
Softsign = unary_layer(E.Softsign)
Clip = unary_layer(E.Clip)
ReLU6 = unary_layer(E.Clip, "ReLU6", "min(max(x, 0), 6), MobileNet's activation: a Clip with fixed bounds.",
                    min=0.0, max=6.0)


@dataclass(frozen=True)
class PRelu(Layer):
    """Leaky ReLU with a learned slope per channel, initialised to 0.25 as in He et al. 2015."""

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        require_channels(path, "PRelu", x)
        slope_shape = (x.type.shape[1], *(1,) * (x.type.rank - 2))
        slope = b.param(join(path, "weight"), slope_shape, Init.PRELU_SLOPE)
        return b.node(E.PRelu, [x, slope], path)


@dataclass(frozen=True)
class SiLU(Layer):
    """x * sigmoid(x) (swish); ONNX has no single op for it, so two nodes."""

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        gate = b.node(E.Sigmoid, [x], join(path, "sigmoid"))
        return b.node(E.Mul, [x, gate], path)


Softmax = unary_layer(R.Softmax, axis=1)
Dropout = unary_layer(E.Dropout, doc="Inference-mode dropout: the identity, kept so the graph mirrors the "
                                     "published architecture.", exposed=("ratio",))
LRN = unary_layer(N.LRN, doc="Local response normalisation across channels (AlexNet: size 5, alpha 1e-4, "
                             "beta 0.75, bias 2).", size=5)


@dataclass(frozen=True)
class BatchNorm(Layer):
    """Inference batch norm over channels with random statistics (scale, var ~U(0.5, 1.5); shift, mean ~N(0, 0.1))."""

    epsilon: float = 1e-5

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        require_channels(path, "BatchNorm", x)
        c = (x.type.shape[1],)
        stats = [b.param(join(path, "weight"), c, Init.SCALE), b.param(join(path, "bias"), c, Init.SHIFT),
                 b.param(join(path, "running_mean"), c, Init.SHIFT),
                 b.param(join(path, "running_var"), c, Init.SCALE)]
        return b.node(N.BatchNormalization, [x, *stats], path, epsilon=self.epsilon)


class NormOver(enum.Enum):
    """What a LayerNorm normalises: the channels at each position, or all of a sample's features."""

    CHANNELS = "channels"
    FEATURES = "features"


@dataclass(frozen=True)
class LayerNorm(Layer):
    """Layer normalisation with a learned scale and shift.

    Over CHANNELS (ConvNeXt's channels-first LayerNorm) the channel axis is moved last,
    normalised, and moved back, because ONNX's LayerNormalization normalises trailing
    axes; over FEATURES it normalises (C, *spatial) as the seeds describe LN.
    """

    over: NormOver = NormOver.CHANNELS
    epsilon: float = 1e-5

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        require_channels(path, "LayerNorm", x)
        rank = x.type.rank
        if self.over is NormOver.FEATURES or rank == 2:
            return self._normalize(b, x, path, path, x.type.shape[1:], axis=1)
        last = (0, *range(2, rank), 1)
        moved = b.node(T.Transpose, [x], join(path, "to_channels_last"), perm=last)
        normed = self._normalize(b, moved, join(path, "norm"), path, (x.type.shape[1],), axis=-1)
        back = (0, rank - 1, *range(1, rank - 1))
        return b.node(T.Transpose, [normed], path, perm=back)

    def _normalize(self, b: Builder, x: Value, node_path: str, param_path: str, shape: tuple[int, ...],
                   axis: int) -> Value:
        scale = b.param(join(param_path, "weight"), shape, Init.SCALE)
        shift = b.param(join(param_path, "bias"), shape, Init.SHIFT)
        return b.node(N.LayerNormalization, [x, scale, shift], node_path, axis=axis, epsilon=self.epsilon)


@dataclass(frozen=True)
class LayerScale(Layer):
    """A learned per-channel multiplier (ConvNeXt's gamma), drawn ~U(0.5, 1.5) so the branch it scales is tested."""

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        require_channels(path, "LayerScale", x)
        gamma = b.param(join(path, "gamma"), (x.type.shape[1], *(1,) * (x.type.rank - 2)), Init.SCALE)
        return b.node(E.Mul, [x, gamma], path)
