"""Layers that keep the spatial layout: activations, normalisation, dropout, softmax.

Most are one registry op whose attributes are the layer's fields, so each is declared
in two or three lines through `UnaryOp`; the rest (PReLU, SiLU, BatchNorm, LayerNorm,
LayerScale) also own weights or expand to a few nodes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import ClassVar

from cnncompile.frontends.dsl.core import Builder, Init, Layer, join, require_channels
from cnncompile.ir.graph import Value
from cnncompile.ops import elementwise as E
from cnncompile.ops import norm as N
from cnncompile.ops import reduce as R
from cnncompile.ops import tensor as T
from cnncompile.ops.elementwise import GeluApproximation
from cnncompile.ops.registry import OpDef


@dataclass(frozen=True)
class UnaryOp(Layer):
    """A layer that is exactly one op on its input; every field but `name` is an attribute of the op."""

    op: ClassVar[OpDef]

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        attrs = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}
        return b.node(self.op, [x], path, **attrs)


@dataclass(frozen=True)
class Relu(UnaryOp):
    op = E.Relu


@dataclass(frozen=True)
class LeakyRelu(UnaryOp):
    op = E.LeakyRelu
    alpha: float = 0.01


@dataclass(frozen=True)
class Elu(UnaryOp):
    op = E.Elu
    alpha: float = 1.0


@dataclass(frozen=True)
class Selu(UnaryOp):
    op = E.Selu


@dataclass(frozen=True)
class Sigmoid(UnaryOp):
    op = E.Sigmoid


@dataclass(frozen=True)
class Tanh(UnaryOp):
    op = E.Tanh


@dataclass(frozen=True)
class HardSigmoid(UnaryOp):
    op = E.HardSigmoid
    alpha: float = 0.2
    beta: float = 0.5


@dataclass(frozen=True)
class HardSwish(UnaryOp):
    op = E.HardSwish


@dataclass(frozen=True)
class Gelu(UnaryOp):
    op = E.Gelu
    approximate: GeluApproximation = GeluApproximation.NONE


@dataclass(frozen=True)
class Softplus(UnaryOp):
    op = E.Softplus


@dataclass(frozen=True)
class Softsign(UnaryOp):
    op = E.Softsign


@dataclass(frozen=True)
class Clip(UnaryOp):
    op = E.Clip
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ReLU6(Clip):
    """min(max(x, 0), 6), MobileNet's activation: a Clip with fixed bounds."""

    min: float | None = 0.0
    max: float | None = 6.0


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


@dataclass(frozen=True)
class Softmax(UnaryOp):
    op = R.Softmax
    axis: int = 1


@dataclass(frozen=True)
class Dropout(UnaryOp):
    """Inference-mode dropout: the identity, kept so the graph mirrors the published architecture."""

    op = E.Dropout
    ratio: float = 0.5


@dataclass(frozen=True)
class LRN(UnaryOp):
    """Local response normalisation across channels (AlexNet: size 5, alpha 1e-4, beta 0.75, bias 2)."""

    op = N.LRN
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0


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
