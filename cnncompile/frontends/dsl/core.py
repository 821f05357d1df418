"""The DSL's core: what a layer is, and how a model becomes a verified Graph.

A layer is a frozen dataclass: a value that can be stored, compared, reused and nested.
Building walks the layers once, each one appending its nodes to a Graph through a
`Builder` that owns naming, weight initialisation and the strict shape checks. Node
and weight names are the layer's path in the model ("layer1.0.conv1",
"layer1.0.conv1.weight"), so a table, an error or an exported file points at the line
of the model definition that made it.
"""

from __future__ import annotations

import abc
import enum
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnncompile.algorithms.windows import exact_output_size
from cnncompile.errors import ShapeError
from cnncompile.frontends.onnx_export import save_onnx
from cnncompile.ir.graph import Graph, OpSpec, Value
from cnncompile.ir.types import TensorType
from cnncompile.ir.verifier import verify


class Weights(enum.Enum):
    """What the constants of a built graph hold.

    RANDOM draws every weight (deterministically from the seed). PLACEHOLDER gives
    read-only zero views that occupy no memory: enough for shapes, parameter and MAC
    counts of a full-size model, useless for running it.
    """

    RANDOM = "random"
    PLACEHOLDER = "placeholder"


class Init(enum.Enum):
    """How a weight is drawn, by its role.

    HE_NORMAL, N(0, 2 / fan_in), keeps activations O(1) through deep ReLU stacks (He et
    al. 2015); SCALE, U(0.5, 1.5), for normalisation scales and BN variances, positive
    and near 1; SHIFT, N(0, 0.1), for biases, normalisation shifts and BN means;
    PRELU_SLOPE, the constant 0.25 that He et al. start PReLU slopes from.
    """

    HE_NORMAL = "he_normal"
    SCALE = "scale"
    SHIFT = "shift"
    PRELU_SLOPE = "prelu_slope"


def join(prefix: str, part: str) -> str:
    """A child's path: 'layer1' + '0' -> 'layer1.0'; an empty part keeps the parent's path."""
    if not part:
        return prefix
    return f"{prefix}.{part}" if prefix else part


@dataclass
class Builder:
    """The state one build threads through the layers."""

    graph: Graph
    seed: int = 0
    strict: bool = True
    weights: Weights = Weights.RANDOM

    def param(self, path: str, shape: Sequence[int], init: Init) -> Value:
        """A float32 constant named `path`, drawn from a generator seeded by (seed, path).

        Seeding by path keeps every weight stable when an unrelated layer is added or
        removed.
        """
        shape = tuple(int(d) for d in shape)
        if self.weights is Weights.PLACEHOLDER:
            return self.graph.add_constant(np.broadcast_to(np.float32(0), shape), path)
        if init is Init.PRELU_SLOPE:
            return self.graph.add_constant(np.full(shape, 0.25, np.float32), path)
        rng = np.random.default_rng([self.seed, zlib.crc32(path.encode())])
        if init is Init.SCALE:
            array = rng.random(shape, dtype=np.float32) + np.float32(0.5)
        else:
            std = math.sqrt(2.0 / max(math.prod(shape[1:]), 1)) if init is Init.HE_NORMAL else 0.1
            array = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        return self.graph.add_constant(array, path)

    def node(self, op: OpSpec, inputs: Sequence[Value], path: str, **attrs: Any) -> Value:
        """Append one node named `path`; return its first output (the activation)."""
        return self.graph.add_node(op, inputs, name=path, **attrs)[0]

    def check_window(self, path: str, layer: str, x: Value, extent: Sequence[int], stride: Sequence[int],
                     pad: Sequence[int]) -> None:
        """In strict mode, refuse a window whose last step would not fit: (W - K + 2P) / S + 1 must be whole."""
        if not self.strict:
            return
        for dim, (size, k, s, p) in enumerate(zip(spatial(x), extent, stride, pad)):
            try:
                exact_output_size(size, k, p, s)
            except ShapeError as err:
                hint = _padding_hint(size, k, p, s)
                raise ShapeError(f"layer '{path}' ({layer}) on input {list(x.type.shape)}, spatial dim {dim}: "
                                 f"{err}{hint}") from None


def _padding_hint(size: int, kernel: int, pad: int, stride: int) -> str:
    """The nearest larger symmetric padding that makes the window fit, if one does."""
    for candidate in range(pad + 1, pad + stride + 1):
        span = size - kernel + 2 * candidate
        if span >= 0 and span % stride == 0:
            return f" (pad={candidate} gives {span // stride + 1})"
    return ""


def spatial(x: Value) -> tuple[int, ...]:
    return x.type.shape[2:]


def require_channels(path: str, layer: str, x: Value) -> None:
    """Per-channel layers need (N, C, ...)."""
    if x.type.rank < 2:
        raise ShapeError(f"layer '{path}' ({layer}) needs an (N, C, ...) input, got {list(x.type.shape)}")


def require_feature_map(path: str, layer: str, x: Value) -> None:
    """Spatial layers need (N, C, *spatial); say so at the layer rather than deep in an op rule."""
    if x.type.rank < 3:
        raise ShapeError(f"layer '{path}' ({layer}) needs an (N, C, *spatial) input, got {list(x.type.shape)}; "
                         "spatial layers must come before Flatten")


@dataclass(frozen=True)
class Layer(abc.ABC):
    """A building block: a value that appends its nodes to a graph when applied to an activation.

    `name` is the layer's path component; left as None, the container picks one (a
    Sequential uses the child's index). An empty name merges the layer's nodes into
    its parent's path.
    """

    name: str | None = field(default=None, kw_only=True)

    @abc.abstractmethod
    def apply(self, b: Builder, x: Value, path: str) -> Value:
        """Append this layer's nodes for input `x` under `path`; return the output activation."""

    def label(self, default: str) -> str:
        return default if self.name is None else self.name

    def build(self, input_shape: Sequence[int], *, seed: int = 0, strict: bool = True,
              weights: Weights = Weights.RANDOM) -> Graph:
        """This layer as a whole model over one float32 input of `input_shape` (N, C, *spatial)."""
        return Model(self, tuple(input_shape), strict=strict).build(seed=seed, weights=weights)


@dataclass(frozen=True)
class Model:
    """A layer with what building it needs: a default input shape, a name, strictness.

    `strict` (the default) makes an output size that the seeds' formula does not give
    as a whole number an error at the layer that causes it; False accepts floor
    semantics, as frameworks do, for architectures published that way.
    """

    body: Layer
    input_shape: tuple[int, ...]
    name: str = "model"
    strict: bool = True
    input_name: str = "input"

    def build(self, input_shape: Sequence[int] | None = None, *, seed: int = 0, strict: bool | None = None,
              weights: Weights = Weights.RANDOM) -> Graph:
        """A verified Graph with deterministic weights; the same arguments always give the same graph."""
        graph = Graph(self.name)
        shape = tuple(self.input_shape if input_shape is None else input_shape)
        x = graph.add_input(self.input_name, TensorType(shape))
        builder = Builder(graph, seed, self.strict if strict is None else strict, weights)
        graph.mark_outputs(self.body.apply(builder, x, self.body.label("")))
        verify(graph)
        return graph

    def to_onnx(self, path: str | os.PathLike, input_shape: Sequence[int] | None = None, *, seed: int = 0) -> Path:
        """Build with random weights and write a checked ONNX file (opset 21) that onnxruntime runs."""
        save_onnx(self.build(input_shape, seed=seed), path)
        return Path(path)
