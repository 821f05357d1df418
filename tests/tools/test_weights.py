"""Random weights for onnx's light models: placeholders gone, BatchNorm calibrated."""

import numpy as np
import onnx
import pytest

from cnncompile import load_onnx, run_reference
from cnncompile.ops.norm import BatchNormalization
from cnncompile.tools.models import light_model_path, random_inputs
from cnncompile.tools.weights import randomize_weights


@pytest.fixture(scope="module")
def resnet():
    return randomize_weights(onnx.load(str(light_model_path("resnet50"))), seed=0)


def test_placeholders_are_replaced_by_random_weights(resnet):
    onnx.checker.check_model(resnet)
    assert not [n for n in resnet.graph.node if n.op_type == "ConstantOfShape"]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in resnet.graph.initializer}
    conv1 = weights["gpu_0/conv1_w_0"]
    assert conv1.shape == (64, 3, 7, 7)
    assert abs(conv1.std() - np.sqrt(2 / (3 * 7 * 7))) < 0.01
    assert len(np.unique(conv1)) > 0.99 * conv1.size


def test_batchnorm_statistics_match_the_activations_they_see(resnet):
    graph = load_onnx(resnet)
    normalized = []

    def hook(node, args):
        if node.op is BatchNormalization:
            x, scale, shift, mean, var = args
            z = (x - mean.reshape(-1, 1, 1)) / np.sqrt(var.reshape(-1, 1, 1))
            normalized.append((z.mean(axis=(0, 2, 3)), z.std(axis=(0, 2, 3))))

    run_reference(graph, random_inputs(graph, seed=0), hook=hook)
    assert len(normalized) == 53
    for mean, std in normalized:
        np.testing.assert_allclose(mean, 0, atol=1e-4)
        np.testing.assert_allclose(std, 1, atol=1e-3)


def test_the_classifier_is_not_saturated(resnet):
    graph = load_onnx(resnet)
    (probabilities,) = run_reference(graph, random_inputs(graph, seed=1)).values()
    assert probabilities.max() < 0.5
