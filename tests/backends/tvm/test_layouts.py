"""Values stored in NHWC and NCHWc by the TVM backend match the float64 reference (which ignores layouts).

Graphs are laid out by hand: LayoutTransform nodes move values into a layout, FusedConv
writes the layout its attrs name, the layout-capable ops follow their inputs', and a
final LayoutTransform brings each output back to the logical order.
"""

import numpy as np
import pytest
import tvm

import cnncompile
from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec
from cnncompile.backends.tvm.build import build_module
from cnncompile.backends.tvm.lowering import lower_node
from cnncompile.backends.tvm.module import lower_graph
from cnncompile.backends.tvm.plan import Template
from cnncompile.backends.tvm.runtime import Signature
from cnncompile.backends.tvm.schedule.cpu_layouts import MIN_PARALLEL_MACS
from cnncompile.backends.tvm.schedule.cuda import GPU_LIMITS, RULE_ATTR, lowered_for_check
from cnncompile.backends.tvm.target import parse_target
from cnncompile.backends.tvm.tiling import ConvTile, conv_tiles, layout_tiles
from cnncompile.compiled import CompiledModel, Provenance
from cnncompile.errors import CnnCompileError
from cnncompile.ir.graph import Graph, Value
from cnncompile.ir.types import NHWC, DType, Layout, LayoutKind, TensorType, nchwc
from cnncompile.numerics import relative_error, tolerance
from cnncompile.ops import REGISTRY
from cnncompile.ops.elementwise import ClipAttrs, LeakyReluAttrs
from cnncompile.ops.fused import Activation
from cnncompile.ops.registry import NoAttrs
from cnncompile.selection.candidates import candidates
from cnncompile.tools.layers import compare_layers

LLVM = parse_target("llvm")
CUDA = parse_target("cuda")
LAYOUTS = [NHWC, nchwc(4), nchwc(8), nchwc(16)]


def build(graph: Graph, target=LLVM) -> CompiledModel:
    """The graph as it stands (no passes, which could move its layouts), built for `target`."""
    lowered = lower_graph(graph, target)
    return CompiledModel(build_module(lowered.module, target), target, Signature.of(graph),
                         Provenance(f"graph:{graph.name}", "", "none"), graph, lowered.kernels)


def random_feeds(graph: Graph, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {v.name: rng.standard_normal(v.type.shape).astype(np.float32) for v in graph.inputs}


def assert_matches_reference(graph: Graph, feeds: dict[str, np.ndarray] | None = None) -> CompiledModel:
    feeds = random_feeds(graph) if feeds is None else feeds
    compiled = build(graph)
    got = compiled.run(feeds)
    want = cnncompile.run_reference(graph, feeds, dtype=DType.FLOAT64)
    for name, ref in want.items():
        assert got[name].shape == ref.shape, name
        error = relative_error(got[name], ref)
        assert error <= tolerance(DType.FLOAT32), f"{graph.name} output {name}: error {error:.3g}"
    return compiled


def node(graph: Graph, op: str, inputs: list[Value], **attrs) -> Value:
    (out,) = graph.add_node(REGISTRY[op], inputs, **attrs)
    return out


def stored_as(graph: Graph, value: Value, layout: Layout | None) -> Value:
    return node(graph, "LayoutTransform", [value], layout=layout)


def output(graph: Graph, value: Value) -> None:
    """Mark `value` as a graph output, in the logical order."""
    graph.mark_outputs(stored_as(graph, value, None) if value.type.layout is not None else value)


def he(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)


def test_layout_transform_between_every_pair_of_layouts():
    graph = Graph("transforms")
    x = graph.add_input("x", TensorType((2, 16, 5, 6)))
    every = [None, *LAYOUTS]
    for source in every:
        held = stored_as(graph, x, source)
        for target in every:
            if target != source:
                output(graph, stored_as(graph, held, target))
    compiled = assert_matches_reference(graph)
    feeds = random_feeds(graph)
    assert all(np.array_equal(y, feeds["x"]) for y in compiled.run(feeds).values())


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_layout_capable_ops_match_the_reference(layout):
    """Activations, arithmetic, ChannelAffine, pools, global pools and Concat on inputs stored in `layout`."""
    rng = np.random.default_rng(0)
    graph = Graph(f"ops-{layout}")
    a, b = (stored_as(graph, graph.add_input(name, TensorType((2, 16, 9, 10))), layout) for name in "ab")
    wide = stored_as(graph, graph.add_input("c", TensorType((2, 32, 9, 10))), layout)
    unary = [("Relu", {}), ("Clip", {"min": -0.5, "max": 1.0}), ("LeakyRelu", {"alpha": 0.1}), ("Sigmoid", {}),
             ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {}), ("Tanh", {}), ("Gelu", {})]
    for op, attrs in unary:
        output(graph, node(graph, op, [a], **attrs))
    for op in ("Add", "Sub", "Mul", "Div"):
        output(graph, node(graph, op, [a, b]))
    output(graph, node(graph, "Sum", [a, b, a]))
    scale, shift = (graph.add_constant(rng.standard_normal((16, 1, 1)).astype(np.float32)) for _ in range(2))
    output(graph, node(graph, "ChannelAffine", [a, scale, shift], activation=Activation.CLIP,
                       activation_attrs=ClipAttrs(0.0, 6.0)))
    output(graph, node(graph, "MaxPool", [a], kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), ceil_mode=1))
    output(graph, node(graph, "AveragePool", [a], kernel_shape=(3, 2), strides=(2, 1), pads=(1, 0, 1, 1)))
    output(graph, node(graph, "AveragePool", [a], kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
                       count_include_pad=1, ceil_mode=1))
    output(graph, node(graph, "GlobalAveragePool", [wide]))
    output(graph, node(graph, "GlobalMaxPool", [a]))
    output(graph, node(graph, "Concat", [a, wide, b], axis=1))
    assert_matches_reference(graph)


# (id, X layout, Y layout, in channels, out channels, size, kernel, conv attrs, residual)
CONVS = [
    ("nchw8c-3x3-residual", nchwc(8), nchwc(8), 16, 24, 10, 3, {"pads": (1, 1, 1, 1)}, True),
    ("nchw-input-7x7-stride2", None, nchwc(8), 3, 16, 15, 7, {"strides": (2, 2), "pads": (3, 3, 3, 3)}, False),
    ("8c-to-4c-dilated-asymmetric", nchwc(8), nchwc(4), 16, 12, 11, 3,
     {"dilations": (2, 2), "pads": (2, 1, 0, 2)}, True),
    ("4c-to-16c-1x1", nchwc(4), nchwc(16), 12, 32, 7, 1, {}, False),
    ("16c-one-input-block-1x1", nchwc(16), nchwc(16), 16, 48, 9, 1, {}, True),
    ("8c-one-input-block-1x1-stride2", nchwc(8), nchwc(8), 8, 24, 11, 1, {"strides": (2, 2)}, False),
    ("16c-blocks-wider-than-lanes", nchwc(16), nchwc(16), 32, 32, 6, 3, {"pads": (1, 1, 1, 1)}, True),
    ("grouped-whole-blocks", nchwc(8), nchwc(8), 32, 32, 8, 3, {"group": 2, "strides": (2, 2),
                                                                "pads": (1, 1, 1, 1)}, False),
    ("grouped-split-blocks", nchwc(8), nchwc(8), 16, 16, 7, 3, {"group": 4, "pads": (1, 1, 1, 1)}, False),
    ("depthwise-stride1", nchwc(8), nchwc(8), 24, 24, 9, 3, {"group": 24, "pads": (1, 1, 1, 1)}, True),
    ("depthwise-stride2", nchwc(8), nchwc(8), 16, 16, 12, 3, {"group": 16, "strides": (2, 2),
                                                              "pads": (0, 0, 1, 1)}, False),
    ("depthwise-other-block", nchwc(4), nchwc(8), 16, 16, 7, 5, {"group": 16, "pads": (2, 2, 2, 2)}, False),
    ("depthwise-nchw-input", None, nchwc(16), 16, 16, 7, 3, {"group": 16, "pads": (1, 1, 1, 1)}, False),
    ("nhwc-3x3-stride2", NHWC, NHWC, 8, 12, 9, 3, {"strides": (2, 2), "pads": (1, 1, 1, 1)}, True),
    ("nhwc-grouped", NHWC, NHWC, 12, 18, 6, 3, {"group": 3, "pads": (1, 0, 1, 0)}, False),
    ("nhwc-depthwise-stride2", NHWC, NHWC, 10, 10, 9, 3, {"group": 10, "strides": (2, 2),
                                                          "pads": (1, 1, 1, 1)}, True),
    ("nhwc-from-nchw", None, NHWC, 5, 8, 6, 1, {}, False),
]


def conv_graph(x_layout, y_layout, channels, out, size, k, attrs, residual, *, constant_weights=True, tile=(),
               algorithm=ConvAlgorithm.DIRECT, name="conv") -> Graph:
    rng = np.random.default_rng(0)
    graph = Graph(name)
    x = stored_as(graph, graph.add_input("x", TensorType((1, channels, size, size))), x_layout)
    weights = he(rng, out, channels // attrs.get("group", 1), k, k)
    w = graph.add_constant(weights, "w") if constant_weights else graph.add_input("w", TensorType(weights.shape))
    inputs = [x, w, graph.add_constant(rng.standard_normal(out).astype(np.float32), "b")]
    y_shape = REGISTRY["Conv"].infer([TensorType(x.type.shape), w.type], REGISTRY["Conv"].make_attrs(**attrs))[0].shape
    if residual:
        inputs.append(stored_as(graph, graph.add_input("z", TensorType(y_shape)), y_layout))
    y = node(graph, "FusedConv", inputs, activation=Activation.LEAKY_RELU, activation_attrs=LeakyReluAttrs(0.1),
             algorithm=algorithm, layout=y_layout, tile=tile, **attrs)
    output(graph, y)
    return graph


@pytest.mark.parametrize("case", CONVS, ids=[c[0] for c in CONVS])
def test_conv_in_a_layout_matches_the_reference(case):
    _, *spec = case
    assert_matches_reference(conv_graph(*spec, name=case[0]))


# Convs reading an image's 3 channels in NCHW: (kernel, conv attrs); each blocked candidate is built as offered.
IMAGE_CONVS = [(3, {"pads": (1, 1, 1, 1)}), (3, {"strides": (2, 2), "pads": (0, 1, 1, 0)}), (1, {})]


@pytest.mark.parametrize("k, attrs", IMAGE_CONVS, ids=["3x3", "3x3-stride2", "1x1"])
def test_every_blocked_candidate_reading_an_image_matches_the_reference(k, attrs):
    graph = conv_graph(None, None, 3, 16, 10, k, attrs, False)
    (conv,) = [n for n in graph.nodes if n.op.name == "FusedConv"]
    spec = ConvSpec.of(conv.inputs[0].type, conv.inputs[1].type, **attrs)
    blocked = [c for c in candidates(spec, LLVM) if c.layout is not None and c.layout.kind is LayoutKind.NCHWC]
    assert {c.algorithm for c in blocked} >= {ConvAlgorithm.DIRECT}
    for c in blocked:
        assert_matches_reference(conv_graph(None, c.layout, 3, 16, 10, k, attrs, False, tile=c.tile,
                                            algorithm=c.algorithm, name=str(c)))


def test_conv_with_weights_given_at_run_time_packs_them_in_the_kernel():
    graph = conv_graph(nchwc(8), nchwc(8), 16, 16, 6, 3, {"pads": (1, 1, 1, 1)}, False, constant_weights=False)
    compiled = assert_matches_reference(graph)
    assert not any(k.repacks for k in compiled.kernels)


def test_conv_in_a_layout_runs_the_layout_template_with_the_heuristic_or_the_given_tile():
    def kernel(tile):
        graph = conv_graph(nchwc(8), nchwc(8), 16, 32, 8, 3, {"pads": (1, 1, 1, 1)}, False, tile=tile)
        conv = next(n for n in graph.nodes if n.op.name == "FusedConv")
        return lower_node(conv, tuple(graph.is_constant(v) for v in conv.inputs), LLVM)[1]

    assert kernel(()).plan.template is Template.DIRECT_STORED and kernel(()).tile is not None
    assert kernel((4, 2, 1)).tile == ConvTile(4, 2, 1)
    assert_matches_reference(conv_graph(nchwc(8), nchwc(8), 16, 32, 8, 3, {"pads": (1, 1, 1, 1)}, True,
                                        tile=(2, 2, 2)))


def test_a_tile_that_does_not_divide_the_output_is_an_error_naming_the_node():
    graph = conv_graph(nchwc(8), nchwc(8), 16, 32, 8, 3, {"pads": (1, 1, 1, 1)}, False, tile=(1, 3, 2))
    conv = next(n for n in graph.nodes if n.op.name == "FusedConv")
    with pytest.raises(CnnCompileError, match=f"node '{conv.name}'.*tile \\[1, 3, 2\\].*3 rows"):
        lower_graph(graph, LLVM)


# (id, X layout, Y layout, in channels, out channels, size, kernel, conv attrs, residual, tile): one-row tiles
# whose width does not divide the output's, which run along the flattened image and overhang its end.
FLAT_TILES = [
    ("nchw8c-3x3-residual", nchwc(8), nchwc(8), 16, 16, 7, 3, {"pads": (1, 1, 1, 1)}, True, (2, 1, 5)),
    ("nchw8c-1x1-stride2", nchwc(8), nchwc(8), 24, 24, 9, 1, {"strides": (2, 2)}, False, (3, 1, 4)),
    ("nchw-input-7x7-stride2", None, nchwc(8), 3, 16, 15, 7, {"strides": (2, 2), "pads": (3, 3, 3, 3)}, False,
     (1, 1, 6)),
    ("16c-blocks-split-in-vectors", nchwc(16), nchwc(16), 16, 32, 5, 3, {"pads": (1, 1, 1, 1)}, True, (1, 1, 7)),
    ("grouped-whole-blocks", nchwc(8), nchwc(8), 32, 32, 8, 3, {"group": 2, "strides": (2, 2), "pads": (1, 1, 1, 1)},
     False, (2, 1, 3)),
    ("nhwc-grouped", NHWC, NHWC, 12, 18, 6, 3, {"group": 3, "pads": (1, 0, 1, 0)}, True, (1, 1, 5)),
]


@pytest.mark.parametrize("case", FLAT_TILES, ids=[c[0] for c in FLAT_TILES])
def test_a_one_row_tile_wraps_rows_and_may_overhang_the_output(case):
    _, *spec, tile = case
    graph = conv_graph(*spec, tile=tile, name=case[0])
    conv = next(n for n in graph.nodes if n.op.name == "FusedConv")
    _, kernel = lower_node(conv, tuple(graph.is_constant(v) for v in conv.inputs), LLVM)
    pixels = int(np.prod(conv.outputs[0].type.shape[2:]))
    stage = next(t for t in kernel.outputs[0].op.input_tensors if t.op.name == "conv")
    axis = 1 if conv.attrs.layout == NHWC else 2
    assert kernel.tile == ConvTile(*tile) and pixels % tile[2] != 0
    assert len(stage.shape) == len(kernel.outputs[0].shape) - 1
    assert int(stage.shape[axis]) == -(-pixels // tile[2]) * tile[2]
    assert_matches_reference(graph)


def test_a_one_row_tile_wider_than_the_image_is_an_error():
    graph = conv_graph(nchwc(8), nchwc(8), 16, 16, 3, 3, {"pads": (1, 1, 1, 1)}, False, tile=(1, 1, 10))
    with pytest.raises(CnnCompileError, match="tile \\[1, 1, 10\\].*10 columns exceed the 3x3 output"):
        lower_graph(graph, LLVM)


def test_layout_tiles_rank_one_row_tiles_by_the_pixels_they_compute():
    """A 7x7 image takes 10 tiles of 5 pixels (0.7 loads per FMA), not 7 rows of 7 (1.14); every tile fits
    the 16 AVX2 registers with its weight vectors and one broadcast; conv_tiles' tiles stay candidates."""
    assert layout_tiles(512, 7, 7, 8)[0] == ConvTile(2, 1, 5)
    assert layout_tiles(96, 14, 14, 8)[0] == ConvTile(3, 1, 4)
    assert all(t.accumulators + t.vectors + 1 <= 16 for t in layout_tiles(96, 14, 14, 8))
    assert set(conv_tiles(64, 56, 56, 8)) <= set(layout_tiles(64, 56, 56, 8))


def test_a_conv_below_min_parallel_macs_runs_on_one_thread():
    """Waking the thread pool costs more than a small conv's second core saves: a 16-channel depthwise conv
    on 8x8 keeps its tiles serial; the same conv on 128 channels at 56x56 shares them."""
    def parallel_loops(channels, size):
        graph = conv_graph(nchwc(8), nchwc(8), channels, channels, size, 3, {"group": channels, "pads": (1, 1, 1, 1)},
                           False)
        func = next(f for gv, f in lower_graph(graph, LLVM).module.functions_items()
                    if isinstance(f, tvm.tirx.PrimFunc) and gv.name_hint.startswith("fusedconv"))
        return func.script().count("T.parallel(")

    assert 16 * 8 * 8 * 9 < MIN_PARALLEL_MACS <= 128 * 56 * 56 * 9
    assert parallel_loops(16, 8) == 0 and parallel_loops(128, 56) == 1


def test_a_constant_stored_in_a_layout_is_converted_when_embedded():
    rng = np.random.default_rng(2)
    graph = Graph("constant-residual")
    x = stored_as(graph, graph.add_input("x", TensorType((1, 8, 6, 6))), nchwc(4))
    z = Value("z", TensorType((1, 8, 6, 6), layout=nchwc(4)))
    graph.constants[z] = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    output(graph, node(graph, "Add", [x, z]))
    assert_matches_reference(graph)


def small_network() -> Graph:
    """A stem conv from NCHW, a pool, a residual block, a depthwise conv, a concat and a classifier, in NCHW8c."""
    rng = np.random.default_rng(3)
    graph = Graph("laid-out-net")
    c8 = nchwc(8)
    relu = {"activation": Activation.RELU, "activation_attrs": NoAttrs(), "layout": c8}

    def conv(x, out, k, **attrs):
        w = graph.add_constant(he(rng, out, x.type.shape[1] // attrs.get("group", 1), k, k), "w")
        b = graph.add_constant(rng.standard_normal(out).astype(np.float32) * 0.1, "b")
        return node(graph, "FusedConv", [x, w, b, *attrs.pop("residual", [])], **relu, **attrs)

    x = graph.add_input("image", TensorType((1, 3, 20, 20)))
    stem = conv(x, 16, 3, strides=(2, 2), pads=(1, 1, 1, 1))
    pooled = node(graph, "MaxPool", [stem], kernel_shape=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1))
    block = conv(conv(pooled, 16, 3, pads=(1, 1, 1, 1)), 16, 3, pads=(1, 1, 1, 1), residual=[pooled])
    scale, shift = (graph.add_constant(rng.uniform(0.5, 1.5, (16, 1, 1)).astype(np.float32)) for _ in range(2))
    affine = node(graph, "ChannelAffine", [block, scale, shift], activation=Activation.NONE,
                  activation_attrs=NoAttrs())
    depthwise = conv(affine, 16, 3, group=16, strides=(2, 2), pads=(1, 1, 1, 1))
    joined = node(graph, "Concat", [depthwise, conv(depthwise, 8, 1)], axis=1)
    features = stored_as(graph, node(graph, "GlobalAveragePool", [joined]), None)
    flat = node(graph, "Flatten", [features], axis=1)
    fc = graph.add_constant(he(rng, 24, 10), "fc")
    graph.mark_outputs(node(graph, "Gemm", [flat, fc]))
    return graph


def test_a_small_network_laid_out_by_hand_matches_end_to_end_and_node_by_node():
    graph = small_network()
    feeds = random_feeds(graph)
    compiled = assert_matches_reference(graph, feeds)
    checks = list(compare_layers(graph, compiled.graph, compiled.run_node, feeds))
    assert {c.node for c in checks} == {n.name for n in compiled.graph.nodes}
    assert all(c.max_rel <= tolerance(DType.FLOAT32) for c in checks), [c for c in checks if c.max_rel > 1e-5]


def test_layout_kernels_schedule_for_cuda_and_fit_the_device():
    graph = small_network()
    x = graph.add_input("x", TensorType((1, 8, 7, 7)))
    nhwc = stored_as(graph, x, NHWC)
    rng = np.random.default_rng(4)
    w = graph.add_constant(he(rng, 8, 1, 3, 3), "w")
    b = graph.add_constant(np.zeros(8, np.float32), "b")
    y = node(graph, "FusedConv", [nhwc, w, b], group=8, pads=(1, 1, 1, 1), activation=Activation.NONE,
             activation_attrs=NoAttrs(), layout=NHWC)
    output(graph, node(graph, "AveragePool", [y], kernel_shape=(2, 2)))
    functions = [f for _, f in lower_graph(graph, CUDA).module.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]
    assert len(functions) > 10
    for func in functions:
        assert func.attrs[RULE_ATTR]
        assert tvm.s_tir.analysis.verify_well_formed(func)
        assert tvm.s_tir.analysis.verify_gpu_code(lowered_for_check(func, CUDA.to_tvm()), GPU_LIMITS)
