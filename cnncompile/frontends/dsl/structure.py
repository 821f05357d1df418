"""Layers that wire other layers together: chains, branches, skips and gates.

These are where whole architectures get their shape: `Sequential` (VGG), `Concat`
(Inception branches, DenseNet's growing feature maps, ShuffleNet's strided unit),
`Residual` (ResNet, MobileNetV2, ConvNeXt) and `Highway` (gated skips). Each checks
what its branches produce before joining them, so a mismatch is reported at the block
that joins, naming the branch that disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnncompile.errors import ShapeError
from cnncompile.frontends.dsl.core import Builder, Layer, join, require_feature_map
from cnncompile.ir.graph import Value
from cnncompile.ops import elementwise as E
from cnncompile.ops import tensor as T


def _layers(kind: str, items: tuple) -> tuple[Layer, ...]:
    for item in items:
        if not isinstance(item, Layer):
            raise TypeError(f"{kind} takes layers, got {type(item).__name__}; unpack lists with *")
    return tuple(items)


def _then(b: Builder, y: Value, path: str, after: Layer | None) -> Value:
    """Apply an optional post-join layer (ResNet's ReLU after the add)."""
    if after is None:
        return y
    return after.apply(b, y, join(path, after.label(type(after).__name__.lower())))


@dataclass(frozen=True, init=False)
class Sequential(Layer):
    """Layers applied one after another; an unnamed child is named by its index, as in torch."""

    layers: tuple[Layer, ...]

    def __init__(self, *layers: Layer, name: str | None = None):
        object.__setattr__(self, "layers", _layers("Sequential", layers))
        object.__setattr__(self, "name", name)

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        for index, layer in enumerate(self.layers):
            x = layer.apply(b, x, join(path, layer.label(str(index))))
        return x


@dataclass(frozen=True)
class Identity(Layer):
    """The input unchanged (no node): the carried branch of a DenseNet layer's concat."""

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        return x


@dataclass(frozen=True, init=False)
class Concat(Layer):
    """Every branch applied to the same input, their outputs joined along channels.

    Unnamed branches are "branch1", "branch2", ...; the join takes the block's own name.
    """

    branches: tuple[Layer, ...]
    after: Layer | None

    def __init__(self, *branches: Layer, after: Layer | None = None, name: str | None = None):
        if not branches:
            raise TypeError("Concat needs at least one branch")
        object.__setattr__(self, "branches", _layers("Concat", branches))
        object.__setattr__(self, "after", after)
        object.__setattr__(self, "name", name)

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        paths = [join(path, branch.label(f"branch{i + 1}")) for i, branch in enumerate(self.branches)]
        outs = [branch.apply(b, x, p) for branch, p in zip(self.branches, paths)]
        def others(v: Value) -> tuple[int, ...]:
            return v.type.shape[:1] + v.type.shape[2:]

        odd = [p for p, v in zip(paths, outs) if others(v) != others(outs[0])]
        if odd:
            listed = ", ".join(f"'{p}' gives {list(v.type.shape)}" for p, v in zip(paths, outs))
            raise ShapeError(
                f"layer '{path}' (Concat): branches must agree on every dim but channels, but {listed}; "
                f"branch '{odd[0]}' is the odd one out: check its strides and pads"
            )
        return _then(b, b.node(T.Concat, outs, path or "concat", axis=1), path, self.after)


@dataclass(frozen=True)
class Residual(Layer):
    """body(x) + shortcut(x): the identity shortcut by default, or a projection such as a strided 1x1 conv.

    The body's nodes sit directly under the block's path (torch's "layer1.0.conv1"), the
    shortcut under "downsample", the add under "add".
    """

    body: Layer
    shortcut: Layer | None = None
    after: Layer | None = None

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        y = self.body.apply(b, x, join(path, self.body.label("")))
        s = x if self.shortcut is None else self.shortcut.apply(b, x, join(path, self.shortcut.label("downsample")))
        if y.type.shape != s.type.shape:
            raise ShapeError(f"layer '{path}' (Residual): {_mismatch(y.type.shape, s.type.shape)}")
        return _then(b, b.node(E.Add, [y, s], join(path, "add")), path, self.after)


def _mismatch(body: tuple[int, ...], shortcut: tuple[int, ...]) -> str:
    """Say which of channels and spatial size differ, and the projection that would fix it."""
    what = f"the body gives {list(body)} but the shortcut gives {list(shortcut)}"
    if len(body) != len(shortcut) or len(body) < 3:
        return f"{what}; both must have the same shape"
    problems, stride = [], 1
    if body[1] != shortcut[1]:
        problems.append(f"channels differ ({body[1]} vs {shortcut[1]})")
    if body[2:] != shortcut[2:]:
        problems.append(f"spatial sizes differ ({list(body[2:])} vs {list(shortcut[2:])})")
        if body[2] and shortcut[2] % body[2] == 0:
            stride = shortcut[2] // body[2]
    return (f"{what}: {' and '.join(problems)}; add a projection shortcut, e.g. "
            f"shortcut=Sequential(Conv({body[1]}, 1, stride={stride}, bias=False), BatchNorm())")


@dataclass(frozen=True)
class Highway(Layer):
    """The seeds' gated block: y = t(x) * h(x) + (1 - t(x)) * x, written x + t * (h - x).

    `transform` is h; `gate` computes the gate's pre-activation, squashed here by a
    sigmoid so that t lies in (0, 1) and the carry gate is 1 - t.
    """

    transform: Layer
    gate: Layer

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        h = self.transform.apply(b, x, join(path, self.transform.label("transform")))
        t = b.node(E.Sigmoid, [self.gate.apply(b, x, join(path, self.gate.label("gate")))], join(path, "gate_sigmoid"))
        for what, value in (("transform", h), ("gate", t)):
            if value.type.shape != x.type.shape:
                raise ShapeError(f"layer '{path}' (Highway): the {what} gives {list(value.type.shape)} but the "
                                 f"input is {list(x.type.shape)}; both branches must keep the input's shape")
        delta = b.node(E.Sub, [h, x], join(path, "delta"))
        return b.node(E.Add, [x, b.node(E.Mul, [t, delta], join(path, "gated"))], path)


@dataclass(frozen=True)
class ChannelShuffle(Layer):
    """ShuffleNet's shuffle: view channels as (groups, C / groups), transpose, flatten back."""

    groups: int

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        require_feature_map(path, "ChannelShuffle", x)
        n, c, *rest = x.type.shape
        if c % self.groups:
            raise ShapeError(f"layer '{path}' (ChannelShuffle): {c} channels do not split into {self.groups} groups")
        split = b.node(T.Reshape, [x], join(path, "split"), shape=(n, self.groups, c // self.groups, *rest))
        swapped = b.node(T.Transpose, [split], join(path, "transpose"), perm=(0, 2, 1, *range(3, len(rest) + 3)))
        return b.node(T.Reshape, [swapped], path, shape=(n, c, *rest))
