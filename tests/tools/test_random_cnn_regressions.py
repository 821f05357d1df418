"""What differential testing of random CNNs found (benchmarks/random_cnn_differential.py), each shrunk
to the smallest spec that still shows it, and the generator's own guarantees."""

import pytest

from cnncompile.backends.reference import run_reference
from cnncompile.errors import CnnCompileError
from cnncompile.frontends.onnx import load_onnx
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import REGISTRY
from cnncompile.tools import random_cnn
from cnncompile.tools.random_cnn import (
    ConvLayer, Grouping, PoolLayer, Pooling, ResidualLayer, Spec, build, draw_spec, random_inputs, to_python,
)
from cnncompile.tools.random_cnn import shrink


def test_specs_are_deterministic_and_build_graphs_the_importer_accepts():
    for seed in range(40):
        spec = draw_spec(seed)
        assert spec == draw_spec(seed)
        assert eval(to_python(spec), vars(random_cnn)) == spec  # printable as the code that rebuilds it
        graph = build(spec)
        assert str(load_onnx(to_onnx(graph))) == str(load_onnx(to_onnx(build(spec))))


def test_shrinking_keeps_the_failure_and_drops_the_rest():
    """A made-up failure (any depthwise conv) shrinks to the one layer that has it, in a residual body."""
    spec = Spec(3, (2, 8, 12, 12), (
        ConvLayer(1, 8, 3), PoolLayer(2, Pooling.MAX, 2, 2),
        ResidualLayer(3, (ConvLayer(4, 8, 1), ConvLayer(5, 8, 3, grouping=Grouping.DEPTHWISE))),
        ConvLayer(6, 16, 5, stride=2)))

    def depthwise(s: Spec) -> bool:
        return any(n.op.name == "Conv" and n.attrs.group > 1 for n in build(s).nodes)

    small, checks = shrink(spec, depthwise)
    assert depthwise(small) and checks < 40
    assert small.layers == (ResidualLayer(3, (ConvLayer(5, 8, 3, grouping=Grouping.DEPTHWISE),)),)
    assert small.shape[0] == 1 and small.shape[2] == 5


def test_ceil_mode_window_starting_in_the_end_padding_is_dropped():
    """Seed 1003 at first drew an AveragePool (k3, s2, end pads 2, ceil_mode) on a 4-wide input, whose
    last ceil_mode window would start in the end padding. ONNX says such windows are ignored, and
    cnncompile and onnxruntime give 2 columns; onnx 1.21's shape inference says 3, so `to_onnx`, which
    checks shapes strictly, refuses the graph (the generator now leaves that corner out)."""
    spec = Spec(1003, (1, 1, 7, 4), (PoolLayer(0, Pooling.AVERAGE, 3, 2, pads=(0, 0, 2, 2), ceil_mode=1),))
    graph = Graph("ceil")
    x = graph.add_input("x", TensorType(spec.shape))
    (y,) = graph.add_node(REGISTRY["AveragePool"], [x], kernel_shape=(3, 3), strides=(2, 2),
                          pads=(0, 0, 2, 2), ceil_mode=1)
    graph.mark_outputs(y)
    assert y.type.shape == (1, 1, 4, 2)
    assert run_reference(graph, random_inputs(spec), dtype=DType.FLOAT64)[y.name].shape == (1, 1, 4, 2)
    with pytest.raises(CnnCompileError, match="Inferred shape and existing shape differ"):
        to_onnx(graph)
    assert build(spec).nodes[0].attrs.ceil_mode == 0  # the generator's way around it
