"""Drawing a `Spec` from a seed: every choice from one numpy Generator, so a seed names one CNN."""

from __future__ import annotations

import numpy as np

from cnncompile.tools.random_cnn.spec import (
    Activation, ActivationLayer, BatchNormLayer, ConcatLayer, ConvLayer, Extra, ExtraLayer, GlobalPoolLayer, Grouping,
    Head, Layer, PadLayer, PoolLayer, Pooling, ResidualLayer, ScaleLayer, Spec, TapLayer,
)


class _Draw:
    """The generator's choices, one numpy Generator for the whole spec."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def key(self) -> int:
        return int(self.rng.integers(2 ** 31))

    def pads(self, limit: int) -> tuple[int, int, int, int]:
        if self.chance(0.5):
            return (int(self.rng.integers(limit + 1)),) * 4
        return tuple(int(p) for p in self.rng.integers(0, limit + 1, 4))

    def conv(self) -> ConvLayer:
        kernel = self.pick([1, 1, 3, 3, 3, 5])
        dilation = self.pick([1, 1, 1, 2]) if kernel > 1 else 1
        grouping = self.pick([Grouping.ONE, Grouping.ONE, Grouping.GROUPED, Grouping.DEPTHWISE])
        groups = self.pick([2, 4]) if grouping is Grouping.GROUPED else self.pick([1, 1, 2])
        return ConvLayer(self.key(), self.pick([4, 8, 8, 12, 16, 24, 32]), kernel, self.pick([1, 1, 2]), dilation,
                         self.pads(kernel // 2 * dilation), grouping, groups, self.chance(0.7))

    def activation(self) -> Activation:
        return self.pick(list(Activation))

    def pool(self) -> PoolLayer:
        kernel = self.pick([2, 3])
        return PoolLayer(self.key(), self.pick(list(Pooling)), kernel, self.pick([1, 2, 2]),
                         self.pads(kernel - 1) if self.chance(0.5) else (0, 0, 0, 0),
                         int(self.chance(0.25)), int(self.chance(0.5)))

    def simple(self, allowed: str) -> Layer:
        """One of the plain layers named by letters: c(onv) b(atchnorm) a(ctivation) p(ool) s(cale)."""
        kind = self.pick(allowed)
        if kind == "c":
            return self.conv()
        if kind == "b":
            return BatchNormLayer(self.key())
        if kind == "a":
            return ActivationLayer(self.key(), self.activation())
        if kind == "p":
            return self.pool()
        return ScaleLayer(self.key(), self.chance(0.5), self.chance(0.3))

    def layer(self) -> Layer:
        kind = self.pick("ccccbaapgsdrrkxt")
        if kind in "cbaps":
            return self.simple(kind)
        if kind == "g":
            return GlobalPoolLayer(self.key(), self.pick(list(Pooling)))
        if kind == "d":
            return PadLayer(self.key(), self.pads(2))
        if kind == "x":
            return ExtraLayer(self.key(), self.pick(list(Extra)))
        if kind == "r":
            body = tuple(self.simple("cccbas") for _ in range(int(self.rng.integers(1, 4))))
            return ResidualLayer(self.key(), body, self.chance(0.3), self.chance(0.5),
                                 self.activation() if self.chance(0.6) else None)
        if kind == "k":
            branches = tuple(tuple(self.simple("ccbap") for _ in range(int(self.rng.integers(0, 3))))
                             for _ in range(int(self.rng.integers(2, 4))))
            return ConcatLayer(self.key(), branches)
        return TapLayer(self.key())


def draw_spec(seed: int) -> Spec:
    """The random CNN of `seed`: 1 to 7 layers on an input of batch 1-2, 1-16 channels, 5-24 pixels a side."""
    d = _Draw(seed)
    shape = (d.pick([1, 1, 2]), d.pick([1, 3, 4, 8, 16]), int(d.rng.integers(5, 25)), int(d.rng.integers(5, 25)))
    layers = tuple(d.layer() for _ in range(int(d.rng.integers(1, 8))))
    return Spec(seed, shape, layers, d.pick(list(Head)), d.pick([5, 10]))

