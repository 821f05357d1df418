"""Shrinking a failing random CNN to the smallest spec that still fails.

Greedy delta debugging over the spec, not the graph: a step removes one layer (at any depth:
a residual body's, a concat branch or a branch's layer), the head, the second sample, or half
the pixels, and is kept when the smaller spec still fails. Because every sub-sequence of a
spec's layers builds (each layer adapts to what reaches it), no step yields an invalid graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from cnncompile.tools.random_cnn.spec import ConcatLayer, Head, Layer, ResidualLayer, Spec


def _removals(layers: tuple[Layer, ...]) -> Iterator[tuple[Layer, ...]]:
    """`layers` with one layer removed, or one nested layer or branch removed, biggest cuts first."""
    for i in range(len(layers)):
        yield layers[:i] + layers[i + 1:]
    for i, layer in enumerate(layers):
        if isinstance(layer, ResidualLayer):
            for body in _removals(layer.body):
                if body:
                    yield layers[:i] + (dataclasses.replace(layer, body=body),) + layers[i + 1:]
            if layer.activation is not None:
                yield layers[:i] + (dataclasses.replace(layer, activation=None),) + layers[i + 1:]
        elif isinstance(layer, ConcatLayer):
            for j, branch in enumerate(layer.branches):
                if len(layer.branches) > 1:
                    fewer = layer.branches[:j] + layer.branches[j + 1:]
                    yield layers[:i] + (dataclasses.replace(layer, branches=fewer),) + layers[i + 1:]
                for smaller_branch in _removals(branch):
                    branches = layer.branches[:j] + (smaller_branch,) + layer.branches[j + 1:]
                    yield layers[:i] + (dataclasses.replace(layer, branches=branches),) + layers[i + 1:]


def smaller(spec: Spec) -> Iterator[Spec]:
    """Every spec one step simpler than `spec`: a layer, branch or the head gone, batch 1, fewer pixels."""
    for layers in _removals(spec.layers):
        yield dataclasses.replace(spec, layers=layers)
    if spec.head is not Head.NONE:
        yield dataclasses.replace(spec, head=Head.NONE)
    n, c, h, w = spec.shape
    if n > 1:
        yield dataclasses.replace(spec, shape=(1, c, h, w))
    if h > 5 or w > 5:
        yield dataclasses.replace(spec, shape=(n, c, max(5, h // 2 + 1), max(5, w // 2 + 1)))


def shrink(spec: Spec, fails: Callable[[Spec], bool], budget: int = 200) -> tuple[Spec, int]:
    """The smallest spec reached from `spec` by `smaller` steps that all still `fail` (greedy delta
    debugging: take the first simpler spec that fails, repeat until none does), and the checks it took.
    `budget` bounds the checks: each is a compile."""
    checks = 0
    progressed = True
    while progressed and checks < budget:
        progressed = False
        for candidate in smaller(spec):
            checks += 1
            if fails(candidate):
                spec, progressed = candidate, True
                break
            if checks >= budget:
                break
    return spec, checks
