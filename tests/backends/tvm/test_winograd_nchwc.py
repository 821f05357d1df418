"""Winograd on blocked feature maps (lowering/conv_algorithms/winograd_nchwc.py) matches the float64
direct reference, over random shapes, layouts and epilogues, and is the kernel its attrs ask for.

The oracle is the reference interpreter running the same graph with algorithm `direct` in
float64 (it ignores layouts); the tolerance is the policy's for the Winograd variant.
Graphs are laid out by hand: X is moved into its layout by a LayoutTransform, the conv
writes the NCHWc layout its attrs name, and the output is moved back to NCHW.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncompile
from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.backends.tvm.build import build_module
from cnncompile.backends.tvm.lowering import lower_node
from cnncompile.backends.tvm.module import build_primfunc, lower_graph
from cnncompile.backends.tvm.plan import Template
from cnncompile.backends.tvm.runtime import Signature
from cnncompile.backends.tvm.target import parse_target
from cnncompile.backends.tvm.tiling import ConvTile
from cnncompile.compiled import CompiledModel, Provenance
from cnncompile.errors import CnnCompileError
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import NHWC, DType, Layout, TensorType, nchwc
from cnncompile.numerics import relative_error, tolerance
from cnncompile.ops import REGISTRY
from cnncompile.ops.elementwise import LeakyReluAttrs
from cnncompile.ops.fused import Activation
from cnncompile.ops.registry import NoAttrs

LLVM = parse_target("llvm")
WINOGRAD = [ConvAlgorithm.WINOGRAD_F2X3, ConvAlgorithm.WINOGRAD_F4X3]


@dataclasses.dataclass(frozen=True)
class Case:
    batch: int
    channels: int
    out_channels: int
    height: int
    width: int
    pads: tuple[int, int, int, int]
    x_layout: Layout | None
    y_layout: Layout
    residual: bool
    activation: Activation


def graph_of(case: Case, algorithm: ConvAlgorithm, tile: tuple[int, ...] = ()) -> Graph:
    rng = np.random.default_rng(case.channels * 31 + case.height)
    graph = Graph(f"winograd_{algorithm.value}")
    x = graph.add_input("x", TensorType((case.batch, case.channels, case.height, case.width)))
    if case.x_layout is not None:
        (x,) = graph.add_node(REGISTRY["LayoutTransform"], [x], layout=case.x_layout)
    weights = rng.standard_normal((case.out_channels, case.channels, 3, 3)) * np.sqrt(2.0 / (9 * case.channels))
    inputs = [x, graph.add_constant(weights.astype(np.float32), "w"),
              graph.add_constant(rng.standard_normal(case.out_channels).astype(np.float32), "b")]
    out = (case.batch, case.out_channels, case.height + case.pads[0] + case.pads[2] - 2,
           case.width + case.pads[1] + case.pads[3] - 2)
    if case.residual:
        (z,) = graph.add_node(REGISTRY["LayoutTransform"], [graph.add_input("z", TensorType(out))],
                              layout=case.y_layout)
        inputs.append(z)
    attrs = LeakyReluAttrs(0.1) if case.activation is Activation.LEAKY_RELU else NoAttrs()
    (y,) = graph.add_node(REGISTRY["FusedConv"], inputs, pads=case.pads, activation=case.activation,
                          activation_attrs=attrs, algorithm=algorithm, layout=case.y_layout, tile=tile)
    (y,) = graph.add_node(REGISTRY["LayoutTransform"], [y], layout=None)
    graph.mark_outputs(y)
    return graph


def run(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The graph as it stands (no passes, which could move its layouts), built for LLVM."""
    lowered = lower_graph(graph, LLVM)
    compiled = CompiledModel(build_module(lowered.module, LLVM), LLVM, Signature.of(graph),
                             Provenance(f"graph:{graph.name}", "", "none"), graph, lowered.kernels)
    return compiled.run(feeds)


def check_matches_direct(case: Case, algorithm: ConvAlgorithm) -> None:
    graph = graph_of(case, algorithm)
    rng = np.random.default_rng(7)
    feeds = {v.name: rng.standard_normal(v.type.shape).astype(np.float32) for v in graph.inputs}
    got = run(graph, feeds)
    want = cnncompile.run_reference(graph_of(case, ConvAlgorithm.DIRECT), feeds, dtype=DType.FLOAT64)
    error = relative_error(got[graph.outputs[0].name], next(iter(want.values())))
    assert error <= tolerance(DType.FLOAT32, algorithm), f"{algorithm.value} {case}: error {error:.3g}"


@st.composite
def cases(draw) -> Case:
    """Channels in whole blocks of 4, 8 or 16 (X's block may differ from Y's, or X be NCHW), any image
    size from 1 (tiles overhanging the edge), asymmetric pads, with or without residual."""
    in_block, out_block = draw(st.sampled_from([4, 8, 16])), draw(st.sampled_from([4, 8, 16]))
    channels = in_block * draw(st.integers(1, 3))
    x_layout = draw(st.sampled_from([None, nchwc(in_block)]))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    height = draw(st.integers(max(1, 3 - pads[0] - pads[2]), 13))
    width = draw(st.integers(max(1, 3 - pads[1] - pads[3]), 13))
    return Case(draw(st.integers(1, 2)), channels, out_block * draw(st.integers(1, 3)), height, width, pads,
                x_layout, nchwc(out_block), draw(st.booleans()),
                draw(st.sampled_from([Activation.NONE, Activation.RELU, Activation.LEAKY_RELU])))


@pytest.mark.parametrize("algorithm", WINOGRAD, ids=lambda a: a.value)
@given(case=cases())
@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_blocked_winograd_matches_direct_reference(algorithm, case):
    check_matches_direct(case, algorithm)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", WINOGRAD, ids=lambda a: a.value)
@given(case=cases())
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_blocked_winograd_matches_direct_reference_broadly(algorithm, case):
    check_matches_direct(case, algorithm)


RESNET_LIKE = Case(1, 16, 32, 8, 8, (1, 1, 1, 1), nchwc(8), nchwc(8), True, Activation.RELU)


def kernel_of(graph: Graph):
    conv = next(n for n in graph.nodes if n.op.name == "FusedConv")
    return lower_node(conv, tuple(graph.is_constant(v) for v in conv.inputs), LLVM)[1]


@pytest.mark.parametrize("algorithm", WINOGRAD, ids=lambda a: a.value)
def test_blocked_winograd_is_its_own_kernel_with_a_gemm_tile(algorithm):
    kernel = kernel_of(graph_of(RESNET_LIKE, algorithm))
    assert kernel.plan.template is Template.WINOGRAD_BLOCKED
    # (vectors of output channel blocks, 1, Winograd tiles): 4 output blocks, (8 / m)^2 tiles
    tiles = (8 // (2 if algorithm is ConvAlgorithm.WINOGRAD_F2X3 else 4)) ** 2
    assert kernel.tile.rows == 1 and 4 % kernel.tile.vectors == 0 and tiles % kernel.tile.cols == 0


def test_a_tuned_gemm_tile_is_honoured_and_a_wrong_one_is_an_error():
    algorithm = ConvAlgorithm.WINOGRAD_F2X3
    assert kernel_of(graph_of(RESNET_LIKE, algorithm, tile=(1, 1, 8))).tile == ConvTile(1, 1, 8)
    # 3 blocks do not divide 4; 2 x 8 accumulators, 2 weight vectors and 2 spare exceed 16 registers
    for wrong in ((3, 1, 8), (2, 1, 8)):
        with pytest.raises(CnnCompileError, match="does not fit this conv.s winograd_blocked kernel: this Winograd GEMM takes"):
            kernel_of(graph_of(RESNET_LIKE, algorithm, tile=wrong))


def test_winograd_cannot_write_nhwc():
    with pytest.raises(CnnCompileError, match="winograd_f2x3 works in NCHW or NCHWc only"):
        graph_of(dataclasses.replace(RESNET_LIKE, y_layout=NHWC), ConvAlgorithm.WINOGRAD_F2X3)


@pytest.mark.parametrize("size, separate", [(8, False), (7, True)], ids=["tiles-cover-the-output", "tiles-overhang"])
def test_the_epilogue_is_applied_as_tiles_are_written_unless_they_must_be_cropped(size, separate):
    graph = graph_of(dataclasses.replace(RESNET_LIKE, height=size, width=size), ConvAlgorithm.WINOGRAD_F4X3)
    conv = next(n for n in graph.nodes if n.op.name == "FusedConv")
    func, _ = build_primfunc(conv, tuple(graph.is_constant(v) for v in conv.inputs), LLVM, "conv")
    script = func.script()
    assert ('T.sblock("winograd_crop")' in script) is separate
    assert 'T.sblock("epilogue")' not in script


# More output channels than Winograd tiles: each thread's group of output blocks transforms its own output.
BY_OUTPUT_BLOCKS = {
    "tiles-cover-the-output": Case(1, 16, 64, 6, 6, (1, 1, 1, 1), nchwc(8), nchwc(16), False, Activation.RELU),
    "tiles-overhang": Case(2, 8, 48, 5, 5, (1, 1, 1, 1), None, nchwc(8), True, Activation.LEAKY_RELU),
}


@pytest.mark.parametrize("algorithm", WINOGRAD, ids=lambda a: a.value)
@pytest.mark.parametrize("case", BY_OUTPUT_BLOCKS.values(), ids=BY_OUTPUT_BLOCKS.keys())
def test_winograd_by_output_blocks_matches_direct_reference(algorithm, case, monkeypatch):
    monkeypatch.setenv("TVM_NUM_THREADS", "2")
    check_matches_direct(case, algorithm)


@pytest.mark.parametrize("algorithm", WINOGRAD, ids=lambda a: a.value)
@pytest.mark.parametrize("case", BY_OUTPUT_BLOCKS.values(), ids=BY_OUTPUT_BLOCKS.keys())
def test_winograd_by_output_blocks_launches_the_input_transform_and_one_loop_for_the_rest(algorithm, case,
                                                                                          monkeypatch):
    """Two parallel loops: the output transform and any crop run inside the GEMM's (each parallel launch
    wakes the pool's sleeping workers, ~30 us)."""
    monkeypatch.setenv("TVM_NUM_THREADS", "2")
    graph = graph_of(case, algorithm)
    conv = next(n for n in graph.nodes if n.op.name == "FusedConv")
    func, _ = build_primfunc(conv, tuple(graph.is_constant(v) for v in conv.inputs), LLVM, "conv")
    assert func.script().count("T.parallel(") == 2
