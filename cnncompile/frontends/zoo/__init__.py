"""The seed architectures, each a DSL `Model` with its published input size.

    cnncompile.zoo.names()                       # every model's name
    cnncompile.zoo.model("resnet50")             # the Model, to reshape, re-seed or export
    cnncompile.zoo.build("resnet50", (1, 3, 64, 64), seed=0)   # a verified Graph
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cnncompile.errors import CnnCompileError
from cnncompile.frontends.dsl import Model, Weights
from cnncompile.frontends.zoo import classic, convnext, densenet, inception, mobile, resnet, small
from cnncompile.ir.graph import Graph

_MODELS: dict[str, Callable[[], Model]] = {
    "lenet5": classic.lenet5,
    "alexnet": classic.alexnet,
    "zfnet": classic.zfnet,
    "vgg16": classic.vgg16,
    "vgg19": classic.vgg19,
    "nin": classic.nin,
    "googlenet": inception.googlenet,
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnext50_32x4d": resnet.resnext50_32x4d,
    "densenet121": densenet.densenet121,
    "mobilenet_v2": mobile.mobilenet_v2,
    "shufflenet_v1": mobile.shufflenet_v1,
    "squeezenet1_0": mobile.squeezenet1_0,
    "squeezenet1_1": mobile.squeezenet1_1,
    "convnext_tiny": convnext.convnext_tiny,
    "highway_net": small.highway_net,
    "welcome_detector": small.welcome_detector,
    "video_cnn": small.video_cnn,
}


def names() -> list[str]:
    return list(_MODELS)


def model(name: str) -> Model:
    try:
        return _MODELS[name]()
    except KeyError:
        raise CnnCompileError(f"unknown zoo model '{name}'; choose one of {', '.join(_MODELS)}") from None


def build(name: str, input_shape: Sequence[int] | None = None, seed: int = 0,
          weights: Weights = Weights.RANDOM) -> Graph:
    """The named model as a verified Graph, at its published input size unless `input_shape` is given."""
    return model(name).build(input_shape, seed=seed, weights=weights)


__all__ = ["Model", "Weights", "build", "model", "names"]
