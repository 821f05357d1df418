"""Whole models through the TVM backend (LLVM): validated per node against the float64 reference,
and differentially against onnxruntime on the same weights and inputs.

Zoo models run at a reduced input size to keep the suite fast; full-size runs live in
benchmarks/tvm_speed.py.
"""

import onnx
import onnxruntime as ort
import pytest

import cnncompile
from cnncompile.numerics import relative_error
from cnncompile.frontends.load import load_model
from cnncompile.tools.models import light_model_path, random_inputs
from cnncompile.tools.validate import judge
from cnncompile.tools.weights import randomize_weights

# float32 against float32: both accumulate rounding differently through the depth of the net
ORT_AGREEMENT = 1e-4


def onnxruntime_outputs(graph: cnncompile.Graph, inputs) -> dict:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(cnncompile.to_onnx(graph).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return dict(zip([v.name for v in graph.outputs], session.run(None, inputs)))


def check(graph: cnncompile.Graph, pipeline: str = "O3") -> None:
    compiled = cnncompile.compile(graph, target="llvm", pipeline=pipeline)
    inputs = random_inputs(graph, seed=1)
    result = judge(compiled, graph, inputs)
    assert result.passed, result.report()
    ours = compiled.run(inputs)
    # a Winograd F(4,3) layer is allowed 1e-3 by the policy: the engines may differ by as much
    limit = max(ORT_AGREEMENT, result.tolerance)
    for name, theirs in onnxruntime_outputs(graph, inputs).items():
        assert relative_error(ours[name], theirs) <= limit, name


@pytest.mark.parametrize("name, size", [
    ("resnet18", 64),
    ("mobilenet_v2", 64),
    pytest.param("resnet50", 64, marks=pytest.mark.slow),
    pytest.param("densenet121", 64, marks=pytest.mark.slow),
    pytest.param("vgg16", 32, marks=pytest.mark.slow),
    pytest.param("googlenet", 64, marks=pytest.mark.slow),
    pytest.param("squeezenet1_1", 63, marks=pytest.mark.slow),  # its stride-2 windows need odd sizes
])
def test_zoo_model(name, size):
    check(load_model(f"zoo:{name}", {"input": (1, 3, size, size)}))


@pytest.mark.parametrize("name", [
    "squeezenet",
    pytest.param("resnet50", marks=pytest.mark.slow),
    pytest.param("shufflenet", marks=pytest.mark.slow),
    pytest.param("inception_v2", marks=pytest.mark.slow),
])
def test_light_onnx_model_with_random_weights(name):
    model = randomize_weights(onnx.load(str(light_model_path(name))), seed=0)
    check(cnncompile.load_onnx(model))


def test_unoptimized_pipeline_gives_the_same_numbers():
    graph = load_model("zoo:resnet18", {"input": (1, 3, 32, 32)})
    inputs = random_inputs(graph, seed=2)
    o0 = cnncompile.compile(graph, target="llvm", pipeline="O0").run(inputs)
    o3 = cnncompile.compile(graph, target="llvm", pipeline="O3").run(inputs)
    for name in o0:
        assert relative_error(o3[name], o0[name]) <= 1e-5
