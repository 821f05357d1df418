"""Real CNNs through O3: ResNet-50 and DenseNet-121 (onnx's light models with random weights)
and the zoo's MobileNetV2. No BatchNormalization survives, every conv -> BN -> activation
chain becomes one FusedConv, the numbers stay put, and the result exports to ONNX that
onnxruntime runs."""

from collections import Counter

import onnx
import pytest

from cnncompile import run_reference, zoo
from cnncompile.frontends.onnx import load_onnx
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.ir.graph import Graph, Node
from cnncompile.numerics import relative_error
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Clip, Mul, Relu, Sum
from cnncompile.ops.fused import Activation, FusedConv
from cnncompile.ops.norm import BatchNormalization
from cnncompile.passes import float64_twin, preset, run_pipeline
from cnncompile.tools.models import light_model_path, random_inputs
from cnncompile.tools.weights import randomize_weights
from onnx_harness import run_ort

pytestmark = pytest.mark.slow
from pass_harness import numerics_error, ops

ACTIVATIONS = (Relu, Clip)
# What sits between a conv and its activation in these models: BatchNorm, a per-channel
# Mul/Add (DenseNet's Caffe2 scale layers), a residual Add/Sum.
BETWEEN = (BatchNormalization, Mul, Add, Sum)


def light(name: str) -> Graph:
    return load_onnx(randomize_weights(onnx.load(str(light_model_path(name))), seed=0, calibrate=False))


MODELS = {
    "resnet50": lambda: light("resnet50"),
    "densenet121": lambda: light("densenet121"),
    "mobilenet_v2": lambda: zoo.build("mobilenet_v2", (1, 3, 64, 64), seed=0),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def optimized(request):
    graph = MODELS[request.param]()
    before = graph.copy()
    return request.param, before, run_pipeline(graph, preset("O3").steps(), verify=True)


def conv_bn_activation_chains(graph: Graph) -> int:
    """Activations whose input comes from a Conv through BatchNorm (and scale layers, a residual add)."""
    producer = {out: node for node in graph.nodes for out in node.outputs}

    def reaches_conv_bn(node: Node | None, seen_bn: bool) -> bool:
        if node is None:
            return False
        if node.op is Conv:
            return seen_bn
        if node.op in BETWEEN:
            seen_bn = seen_bn or node.op is BatchNormalization
            return any(reaches_conv_bn(producer.get(v), seen_bn) for v in node.inputs if not graph.is_constant(v))
        return False

    return sum(1 for n in graph.nodes if n.op in ACTIVATIONS and reaches_conv_bn(producer.get(n.inputs[0]), False))


def test_o3_leaves_no_batchnorm_and_fuses_every_conv_bn_activation(optimized):
    name, before, run = optimized
    after = run.graph
    chains = conv_bn_activation_chains(before)
    fused = [n for n in after.nodes if n.op is FusedConv and n.attrs.activation is not Activation.NONE]
    assert chains > 0 and len(fused) == chains
    assert ops(after)["BatchNormalization"] == 0
    producer = {out: node for node in after.nodes for out in node.outputs}
    assert not [n.name for n in after.nodes if n.op in ACTIVATIONS and producer.get(n.inputs[0]) is not None
                and producer[n.inputs[0]].op in (Conv, FusedConv)], "a standalone activation after a conv"
    print(f"\n{name}: {len(before.nodes)} nodes -> {len(after.nodes)} after O3; "
          f"{dict(Counter(n.op.name for n in before.nodes))} -> {dict(ops(after))}")


def test_o3_keeps_the_numbers(optimized):
    """On the float64 twin, where folds are exact: a wrong rewrite would show, weight rounding does not."""
    _, before, run = optimized
    twin = float64_twin(before)
    optimized_twin = run_pipeline(twin.copy(), preset("O3").steps()).graph
    assert [n.op.name for n in optimized_twin.nodes] == [n.op.name for n in run.graph.nodes]
    assert numerics_error(twin, optimized_twin) <= 1e-10


def test_o3_is_idempotent_on_real_models(optimized):
    _, _, run = optimized
    again = run_pipeline(run.graph.copy(), preset("O3").steps())
    assert not again.changed


def test_optimized_mobilenet_exports_as_standard_onnx():
    graph = run_pipeline(MODELS["mobilenet_v2"](), preset("O3").steps()).graph
    model = to_onnx(graph)
    assert {n.domain for n in model.graph.node} == {""}
    assert {n.op_type for n in model.graph.node} >= {"Conv", "Clip", "Add"}
    inputs = random_inputs(graph, 0)
    gold = run_reference(graph, inputs)
    (theirs,) = run_ort(model, inputs)
    assert relative_error(theirs, next(iter(gold.values()))) <= 1e-5
