"""validate's tolerance per node: DESIGN.md's policy by element type and conv algorithm."""

import numpy as np
import pytest

from cnncompile.algorithms import ConvAlgorithm
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.elementwise import Relu
from cnncompile.ops.fused import FusedConv
from cnncompile.tools.validate import node_tolerance, validate

# DESIGN.md's numerical policy, written out here as the independent source.
POLICY = {ConvAlgorithm.DIRECT: 1e-5, ConvAlgorithm.IM2COL_GEMM: 1e-5, ConvAlgorithm.WINOGRAD_F2X3: 1e-4,
          ConvAlgorithm.WINOGRAD_F4X3: 1e-3}


def conv_graph(algorithm: ConvAlgorithm, channels: int = 16, size: int = 12) -> Graph:
    rng = np.random.default_rng(0)
    g = Graph("conv")
    x = g.add_input("x", TensorType((1, channels, size, size)))
    w = g.add_constant((rng.standard_normal((channels, channels, 3, 3)) * np.sqrt(2 / (9 * channels)))
                       .astype(np.float32), "w")
    b = g.add_constant(rng.standard_normal(channels).astype(np.float32), "b")
    (y,) = g.add_node(FusedConv, [x, w, b], pads=(1, 1, 1, 1), algorithm=algorithm)
    g.mark_outputs(*g.add_node(Relu, [y]))
    return g


@pytest.mark.parametrize("algorithm", list(POLICY))
def test_a_conv_node_is_held_to_its_algorithms_tolerance(algorithm):
    graph = conv_graph(algorithm)
    conv, relu = graph.nodes
    assert node_tolerance(conv) == POLICY[algorithm]
    assert node_tolerance(relu) == 1e-5


def test_a_node_is_held_to_its_element_types_tolerance():
    g = Graph("relus")
    for dtype in (DType.FLOAT16, DType.INT32):
        g.add_node(Relu, [g.add_input(f"x_{dtype.value}", TensorType((2, 3), dtype))])
    half, integer = g.nodes
    assert node_tolerance(half) == 1e-2
    assert node_tolerance(integer) == 1e-5  # exact in any case; judged as float32 results are


def test_a_winograd_build_validates_end_to_end_by_the_loosest_tolerance_in_it():
    result = validate(conv_graph(ConvAlgorithm.WINOGRAD_F4X3), "llvm", "O0")
    assert result.tolerance == 1e-3
    assert result.passed and result.error <= 1e-3
