"""Small float64 CNN graphs with He-initialised weights, and the checks every rewrite test makes.

The graphs are float64 so that folded constants are exact to ~1e-16: reference(before)
and reference(after) then agree to EXACT unless a rewrite is wrong, however deep the net.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from cnncompile import Graph, TensorType, run_reference
from cnncompile.ir.graph import Value
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error
from cnncompile.ops.conv import Conv
from cnncompile.ops.norm import BatchNormalization
from cnncompile.passes import PipelineRun, Step, preset, run_pipeline
from cnncompile.passes.pipelines import CATALOG

EXACT = 1e-12
F64 = DType.FLOAT64


class Net:
    """A float64 graph under construction: one input `x`, layers appended by method calls."""

    def __init__(self, shape: Sequence[int] = (2, 8, 10, 10), seed: int = 0, name: str = "net", dtype: DType = F64):
        self.rng = np.random.default_rng(seed)
        self.graph = Graph(name)
        self.dtype = dtype
        self.x = self.graph.add_input("x", TensorType(tuple(shape), dtype))

    def const(self, array, name: str = "c") -> Value:
        return self.graph.add_constant(np.asarray(array, self.dtype.numpy), name)

    def he(self, shape: Sequence[int], fan_in: int, name: str = "w") -> Value:
        return self.const(self.rng.standard_normal(tuple(shape)) * np.sqrt(2.0 / fan_in), name)

    def node(self, op, *inputs: Value, **attrs) -> Value:
        return self.graph.add_node(op, list(inputs), **attrs)[0]

    def conv(self, x: Value, out: int, kernel: int = 3, *, stride: int = 1, pad: int | None = None, group: int = 1,
             dilation: int = 1, bias: bool = True, weight: Value | None = None, op=Conv) -> Value:
        channels = x.type.shape[1]
        rank = x.type.rank - 2
        pad = (kernel // 2) * dilation if pad is None else pad
        if weight is None:
            shape = (out, channels // group, *(kernel,) * rank) if op is Conv else \
                (channels, out // group, *(kernel,) * rank)
            weight = self.he(shape, fan_in=channels // group * kernel ** rank)
        inputs = [x, weight] + ([self.const(self.rng.standard_normal(out) * 0.1, "b")] if bias else [])
        return self.node(op, *inputs, strides=(stride,) * rank, pads=(pad,) * (2 * rank), group=group,
                         dilations=(dilation,) * rank)

    def bn(self, x: Value, stats: Sequence[Value] | None = None, **attrs) -> Value:
        c = x.type.shape[1]
        stats = stats or [self.const(self.rng.uniform(0.5, 1.5, c), "scale"),
                          self.const(self.rng.standard_normal(c) * 0.1, "shift"),
                          self.const(self.rng.standard_normal(c) * 0.1, "mean"),
                          self.const(self.rng.uniform(0.5, 1.5, c), "var")]
        return self.node(BatchNormalization, x, *stats, **attrs)

    def done(self, *outputs: Value) -> Graph:
        self.graph.mark_outputs(*outputs)
        return self.graph


def optimize(graph: Graph, *passes: str, pipeline: str | None = None) -> tuple[Graph, PipelineRun]:
    """Run the named passes (or a preset) on `graph` with the verifier on; return (a copy of before, the run)."""
    before = graph.copy()
    steps = preset(pipeline).steps() if pipeline else [Step(name, CATALOG[name].build(
        CATALOG[name].options() if CATALOG[name].options else None)) for name in passes]
    return before, run_pipeline(graph, steps, verify=True)


def fired(run: PipelineRun) -> Counter:
    total: Counter = Counter()
    for record in run.records:
        total.update(record.log.fired)
    return total


def declined(run: PipelineRun) -> list[str]:
    return [str(r) for record in run.records for r in record.log.rejections]


def ops(graph: Graph) -> Counter:
    return Counter(node.op.name for node in graph.nodes)


def random_inputs(graph: Graph, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {v.name: rng.standard_normal(v.type.shape).astype(v.type.dtype.numpy) for v in graph.inputs}


def numerics_error(before: Graph, after: Graph, seed: int = 1) -> float:
    """Largest relative difference of the float64 outputs, on fresh random inputs."""
    inputs = random_inputs(before, seed)
    want, got = run_reference(before, inputs), run_reference(after, inputs)
    assert list(want) == list(got), "a pass renamed the graph outputs"
    return max(relative_error(got[name], want[name]) for name in want)


def assert_same_numerics(before: Graph, after: Graph, tol: float = EXACT) -> None:
    for seed in (1, 2):
        error = numerics_error(before, after, seed)
        assert error <= tol, f"outputs moved by {error:.3g} > {tol:g}"
