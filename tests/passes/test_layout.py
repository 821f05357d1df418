"""assign-layouts: convs in NCHWc or NHWC, layout-capable ops following them, the fewest runtime
transforms (at most 2 on ResNet-50 and MobileNetV2), outputs exactly as before, and a second
run that changes nothing."""

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings

from cnncompile import run_reference, verify, zoo
from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.errors import CnnCompileError
from cnncompile.frontends.onnx import load_onnx
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.ir.graph import Graph, Node
from cnncompile.ir.types import NHWC, DType, LayoutKind, nchwc
from cnncompile.numerics import relative_error
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Mul, Relu
from cnncompile.ops.fused import FusedConv, FusedConvAttrs, conv_attrs
from cnncompile.ops.layout import LayoutTransform
from cnncompile.ops.norm import LRN
from cnncompile.ops.pool import GlobalAveragePool, MaxPool
from cnncompile.ops.registry import attr_dict
from cnncompile.ops.tensor import Flatten
from cnncompile.passes import preset, run_pipeline
from cnncompile.passes.layout import LayoutOptions, assign_layouts
from cnncompile.passes.pipelines import PassSpec, Pipeline
from cnncompile.passes.rewrite import RewriteLog
from cnncompile.tools.models import light_model_path, random_inputs
from cnncompile.tools.weights import randomize_weights
from onnx_harness import run_ort
from pass_harness import Net
from test_random_graphs import cnns

N8C = nchwc(8)


def fuse_remaining_convs(graph: Graph) -> Graph:
    """Stand-in for algorithm selection: every Conv that O3 left becomes a direct FusedConv with a zero bias."""
    for index, node in enumerate(graph.nodes):
        if node.op is Conv:
            inputs = list(node.inputs)
            if len(inputs) == 2:
                w = inputs[1].type
                inputs.append(graph.add_constant(np.zeros(w.shape[0], w.dtype.numpy), f"{node.name}_bias"))
            attrs = FusedConvAttrs(**attr_dict(conv_attrs(node.attrs)))
            graph.nodes[index] = Node(FusedConv, inputs, node.outputs, attrs, node.name)
    verify(graph)
    return graph


def prepared(graph: Graph) -> Graph:
    return fuse_remaining_convs(run_pipeline(graph, preset("O3").steps(), verify=True).graph)


def assigned(graph: Graph, **options) -> tuple[Graph, Graph, RewriteLog]:
    """(a copy of the graph before, the graph after, the log), the verifier run on the result."""
    before = graph.copy()
    graph, log = assign_layouts(graph, LayoutOptions(**options))
    verify(graph)
    return before, graph, log


def transforms(graph: Graph) -> list[Node]:
    return [n for n in graph.nodes if n.op is LayoutTransform]


def assert_exact(before: Graph, after: Graph) -> None:
    """Layouts change how values are stored, never what they are: the reference gives identical arrays."""
    inputs = random_inputs(before, seed=3)
    want, got = run_reference(before, inputs), run_reference(after, inputs)
    assert list(want) == list(got)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def assert_rerun_changes_nothing(graph: Graph, **options) -> None:
    text = str(graph)
    graph, log = assign_layouts(graph, LayoutOptions(**options))
    assert not log, dict(log.fired)
    assert str(graph) == text


def small_cnn(channels: int = 16, residual_const: bool = False, dtype: DType = DType.FLOAT64) -> Graph:
    """conv-relu, maxpool, a residual block, global pool, flatten: the shape of a ResNet."""
    net = Net((1, 3, 12, 12), dtype=dtype)
    y = net.node(Relu, net.conv(net.x, channels, 3))
    y = net.node(MaxPool, y, kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1))
    z = net.const(net.rng.standard_normal((1, channels, 6, 6)), "z") if residual_const else y
    y = net.node(Relu, net.node(Add, net.conv(net.node(Relu, net.conv(y, channels, 3)), channels, 3), z))
    y = net.node(Flatten, net.node(GlobalAveragePool, y), axis=1)
    return prepared(net.done(y))


def test_convs_take_the_layout_and_the_only_transform_follows_the_global_pool():
    before, after, log = assigned(small_cnn())
    assert {n.attrs.layout for n in after.nodes if n.op is FusedConv} == {N8C}
    (transform,) = transforms(after)
    assert transform.inputs[0].type.shape == (1, 16, 1, 1)           # after GlobalAveragePool ...
    reader = next(n for n in after.nodes if transform.outputs[0] in n.inputs)
    assert reader.op is Flatten                                       # ... right before Flatten
    first = next(n for n in after.nodes if n.op is FusedConv)
    assert first.inputs[0] in after.inputs                             # the first conv reads NCHW itself
    assert log.fired["layout-transform"] == 1
    assert_exact(before, after)
    assert_rerun_changes_nothing(after)


def test_a_conv_whose_layout_changes_loses_the_tile_chosen_for_the_old_one():
    graph = small_cnn()
    first = next(n for n in graph.nodes if n.op is FusedConv)
    first.attrs = FusedConvAttrs(**{**attr_dict(first.attrs), "tile": (1, 2, 4)})
    _, after, _ = assigned(graph)
    assert (first.attrs.layout, first.attrs.tile) == (N8C, ())


@pytest.mark.parametrize("channels, lanes, layout", [
    (16, 8, nchwc(8)), (24, 8, nchwc(8)), (12, 8, nchwc(4)), (48, 16, nchwc(16)), (6, 8, None),
])
def test_block_is_the_widest_of_lanes_halved_that_divides_the_channels(channels, lanes, layout):
    before, after, _ = assigned(small_cnn(channels), lanes=lanes)
    assert {n.attrs.layout for n in after.nodes if n.op is FusedConv} == {layout}
    assert len(transforms(after)) == (0 if layout is None else 1)
    assert_exact(before, after)


def test_nhwc():
    before, after, _ = assigned(small_cnn(), layout=LayoutKind.NHWC)
    assert {n.attrs.layout for n in after.nodes if n.op is FusedConv} == {NHWC}
    assert len(transforms(after)) == 1
    assert_exact(before, after)
    assert_rerun_changes_nothing(after, layout=LayoutKind.NHWC)


def test_a_constant_residual_gets_a_laid_out_twin_not_a_runtime_transform():
    graph = small_cnn(residual_const=True)
    z = next(v for v in graph.constants if v.name.startswith("z"))
    before, after, log = assigned(graph)
    residual = next(n for n in after.nodes if n.op is FusedConv and len(n.inputs) == 4)
    twin = residual.inputs[3]
    assert after.is_constant(twin) and twin.type.layout == N8C and twin.type.shape == z.type.shape
    assert after.constants[twin] is before.constants[next(v for v in before.constants if v.name == z.name)]
    assert len(transforms(after)) == 1 and log.fired["laid-out-constant"] == 1
    assert_exact(before, after)
    assert_rerun_changes_nothing(after)


def test_an_algorithm_that_works_in_nchw_keeps_its_conv_there():
    graph = small_cnn()
    last = [n for n in graph.nodes if n.op is FusedConv][-1]
    last.attrs = FusedConvAttrs(**{**attr_dict(last.attrs), "algorithm": ConvAlgorithm.IM2COL_GEMM})
    before, after, _ = assigned(graph)
    assert [n.attrs.layout for n in after.nodes if n.op is FusedConv] == [N8C, N8C, None]
    # Its input and its residual go back to NCHW; everything after it stays there.
    assert [(n.attrs.layout, n.inputs[0].type.shape) for n in transforms(after)] == [(None, (1, 16, 6, 6))] * 2
    assert_exact(before, after)


def test_winograd_works_blocked_among_blocked_neighbours():
    graph = small_cnn()
    last = [n for n in graph.nodes if n.op is FusedConv][-1]
    last.attrs = FusedConvAttrs(**{**attr_dict(last.attrs), "algorithm": ConvAlgorithm.WINOGRAD_F2X3})
    before, after, _ = assigned(graph)
    assert [n.attrs.layout for n in after.nodes if n.op is FusedConv] == [N8C, N8C, N8C]
    assert len(transforms(after)) == 1
    assert_exact(before, after)


def test_an_nchw_copy_is_shared_and_counted_once():
    """A conv output read by LRN (NCHW only) and by a Relu: the Relu reads the NCHW copy LRN needs
    anyway, rather than staying laid out and paying a second transform after the global pool."""
    net = Net((1, 3, 8, 8))
    y = net.conv(net.x, 16, 3)
    a = net.node(LRN, y, size=3)
    b = net.node(Flatten, net.node(GlobalAveragePool, net.node(Relu, y)), axis=1)
    before, after, _ = assigned(fuse_remaining_convs(net.done(a, b)))
    (transform,) = transforms(after)
    assert transform.inputs[0].type.shape == (1, 16, 8, 8)
    assert_exact(before, after)


def test_adjacent_inverse_transforms_cancel():
    net = Net((1, 8, 4, 4))
    there = net.node(LayoutTransform, net.x, layout=N8C)
    back = net.node(LayoutTransform, net.node(Relu, there))
    graph = net.done(net.node(Mul, back, back))
    before, after, log = assigned(graph)
    assert transforms(after) == [] and log.fired["cancelled-transform"] == 2
    assert_exact(before, after)


def test_a_laid_out_graph_output_keeps_its_name_and_is_returned_logical():
    net = Net((1, 3, 6, 6))
    graph = fuse_remaining_convs(net.done(net.conv(net.x, 8, 3)))
    name = graph.outputs[0].name
    before, after, _ = assigned(graph)
    (transform,) = transforms(after)
    assert after.outputs[0] is transform.outputs[0] and after.outputs[0].name == name
    assert transform.inputs[0].type.layout == N8C
    assert_exact(before, after)
    assert_rerun_changes_nothing(after)


def test_options_come_from_a_pipeline_file_and_bad_ones_are_refused():
    pipeline = Pipeline("p", (PassSpec("assign-layouts", {"layout": "NHWC", "lanes": 4}),))
    graph = small_cnn()
    after = run_pipeline(graph, pipeline.steps(), verify=True).graph
    assert {n.attrs.layout for n in after.nodes if n.op is FusedConv} == {NHWC}
    for options, message in (({"layout": "NCHW"}, "choose NCHWc or NHWC"), ({"lanes": 6}, "power of two")):
        with pytest.raises(CnnCompileError, match=message):
            Pipeline("p", (PassSpec("assign-layouts", options),)).steps()


def test_export_turns_transforms_into_identity_and_leaks_no_schedule_attribute():
    _, after, _ = assigned(small_cnn(dtype=DType.FLOAT32))
    model = to_onnx(after)
    ops = {n.op_type for n in model.graph.node}
    assert "Identity" in ops and not ops & {"LayoutTransform", "FusedConv"}
    attributes = {a.name for n in model.graph.node for a in n.attribute}
    assert not attributes & {"algorithm", "layout", "tile"}
    inputs = random_inputs(after, seed=4)
    want = run_reference(after, inputs)
    for (name, ours), theirs in zip(want.items(), run_ort(model, inputs)):
        assert relative_error(theirs, ours) <= 1e-5, name


# -- real models ----------------------------------------------------------------------------


def light(name: str) -> Graph:
    return load_onnx(randomize_weights(onnx.load(str(light_model_path(name))), seed=0, calibrate=False))


@pytest.mark.parametrize("model", ["zoo:resnet50", "zoo:mobilenet_v2", "light:resnet50"])
def test_at_most_two_runtime_transforms_on_resnet50_and_mobilenet_v2(model):
    source, name = model.split(":")
    graph = zoo.build(name, (1, 3, 32, 32), seed=0) if source == "zoo" else light(name)
    before, after, _ = assigned(prepared(graph))
    counted = transforms(after)
    print(f"\n{model}: {len(counted)} runtime transform(s): "
          + ", ".join(f"%{n.inputs[0].name} {n.inputs[0].type} -> {n.attrs.layout or 'NCHW'}" for n in counted))
    assert len(counted) <= 2
    assert sum(n.op is FusedConv and n.attrs.layout == N8C for n in after.nodes) >= 50
    if source == "zoo":
        assert_exact(before, after)


# What keeps the remaining transforms: GoogLeNet's LRNs and ShuffleNet's channel shuffles
# (Reshape, Transpose, Reshape) have no layout-capable lowering, so the tensor goes back to
# NCHW before each and the next conv lays it out again for free.
COUNTS = {"resnet18": 1, "resnet50": 1, "mobilenet_v2": 1, "densenet121": 1, "vgg16": 1, "googlenet": 3,
          "squeezenet1_0": 1, "shufflenet_v1": 17}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COUNTS))
@pytest.mark.parametrize("layout", [LayoutKind.NCHWC, LayoutKind.NHWC])
def test_runtime_transform_counts_on_the_zoo(name, layout):
    graph = zoo.build(name, (1, 3, 99, 99) if name.startswith("squeezenet") else (1, 3, 64, 64), seed=0)
    before, after, _ = assigned(prepared(graph), layout=layout)
    print(f"\n{name} {layout.value}: {len(transforms(after))} runtime transform(s)")
    assert len(transforms(after)) == COUNTS[name]
    assert_exact(before, after)
    assert_rerun_changes_nothing(after, layout=layout)


# -- random graphs ----------------------------------------------------------------------------


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cnns())
def test_random_cnns_stay_verified_and_exact(graph):
    graph = prepared(graph)
    for options in ({}, {"layout": LayoutKind.NHWC}):
        before, after, _ = assigned(graph.copy(), **options)
        assert_exact(before, after)
        assert_rerun_changes_nothing(after, **options)
