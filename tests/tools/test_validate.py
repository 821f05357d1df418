"""validate's tolerance per node: DESIGN.md's policy by element type and conv algorithm."""

import numpy as np
import pytest

from cnncompile.algorithms import ConvAlgorithm
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.elementwise import Relu
from cnncompile.ops.fused import FusedConv
from cnncompile.tools.layers import SAFETY, error_bound, measure, reduction_length
from cnncompile.tools.validate import ValidateOptions, agreement, node_tolerance, validate

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
    result = validate(conv_graph(ConvAlgorithm.WINOGRAD_F4X3), ValidateOptions("llvm", "O0"))
    assert result.tolerance == 1e-3
    assert result.passed and result.error <= 1e-3


def test_the_bound_is_eps_times_sqrt_k_times_the_operands_plus_the_result():
    """A 16-channel 3x3 conv sums K = 144 products (plus the bias and its epilogue's few flops per output)."""
    graph = conv_graph(ConvAlgorithm.DIRECT)
    conv = graph.nodes[0]
    assert 144 <= reduction_length(conv) <= 147
    x, w, b = np.full((1, 16, 12, 12), 2.0), np.full((16, 16, 3, 3), 0.5), np.zeros(16)
    y = np.full((1, 16, 12, 12), 3.0)
    want = np.finfo(np.float32).eps * (np.sqrt(reduction_length(conv)) * 2.0 * 0.5 + 3.0)
    assert error_bound(conv, [x, w, b], [False, True, True], y) == pytest.approx(want, rel=1e-12)
    winograd = conv_graph(ConvAlgorithm.WINOGRAD_F4X3).nodes[0]  # 100x looser, as DESIGN.md's 1e-3 vs 1e-5
    assert error_bound(winograd, [x, w, b], [False, True, True], y) == pytest.approx(100 * want, rel=1e-12)
    assert SAFETY >= 1


def test_measure_counts_errors_per_decade():
    gold = np.array([1.0, 2.0, -1.0, 4.0])
    ours = np.array([1.0, 2.0 + 3e-7, -1.0 - 2e-3, 4.0])
    max_abs, max_rel, cosine, histogram = measure(ours, gold)
    assert max_abs == pytest.approx(2e-3) and max_rel == pytest.approx(2e-3 / 4)
    want_cos = ours @ gold / (np.linalg.norm(ours) * np.linalg.norm(gold))
    assert cosine == pytest.approx(want_cos, rel=1e-15)
    assert histogram[0] == 2  # exact
    assert sum(histogram) == 4 and histogram[1 + 16 - 6] == 1 and histogram[1 + 16 - 2] == 1  # (1e-7,1e-6], (1e-3,1e-2]
    assert measure(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))[0] == float("inf")


def test_classifier_agreement_counts_top1_and_the_peers_top1_in_our_top5():
    ours = [{"p": np.array([[0, 1, 2, 3, 4, 5.0], [5, 4, 3, 2, 1, 0.0]])}]
    theirs = [{"p": np.array([[0, 1, 2, 3, 4, 6.0], [0, 0, 0, 0, 0, 1.0]])}]  # row 2: their 5 is our last
    result = agreement(ours, theirs)
    assert (result.top1, result.top5, result.rows) == (0.5, 0.5, 2)
    assert agreement([{"a": np.zeros((1, 3)), "b": np.zeros(1)}], [{"a": np.zeros((1, 3)), "b": np.zeros(1)}]) is None
