"""A declarative DSL for CNNs: layers are values that compose, `build` gives a verified Graph.

    resnet_block = Residual(Sequential(Conv(64, 3, pad=1), BatchNorm(), Relu(),
                                       Conv(64, 3, pad=1), BatchNorm()), after=Relu())
    graph = Sequential(Conv(64, 7, stride=2, pad=3), resnet_block).build((1, 3, 224, 224), strict=False)
"""

from cnncompile.frontends.dsl.core import Builder, Init, Layer, Model, Weights
from cnncompile.frontends.dsl.linear import Flatten, Linear
from cnncompile.frontends.dsl.pointwise import (
    LRN, BatchNorm, Clip, Dropout, Elu, Gelu, HardSigmoid, HardSwish, LayerNorm, LayerScale, LeakyRelu,
    NormOver, PRelu, Relu, ReLU6, Selu, Sigmoid, SiLU, Softmax, Softplus, Softsign, Tanh,
)
from cnncompile.frontends.dsl.spatial import AvgPool, Conv, DepthwiseConv, GlobalAvgPool, GlobalMaxPool, MaxPool
from cnncompile.frontends.dsl.structure import ChannelShuffle, Concat, Highway, Identity, Residual, Sequential
from cnncompile.ops.elementwise import GeluApproximation

__all__ = [
    "AvgPool", "BatchNorm", "Builder", "ChannelShuffle", "Clip", "Concat", "Conv", "DepthwiseConv", "Dropout",
    "Elu", "Flatten", "Gelu", "GeluApproximation", "GlobalAvgPool", "GlobalMaxPool", "HardSigmoid", "HardSwish",
    "Highway", "Identity", "Init", "LRN", "Layer", "LayerNorm", "LayerScale", "LeakyRelu", "Linear", "MaxPool",
    "Model", "NormOver", "PRelu", "ReLU6", "Relu", "Residual", "Selu", "Sequential", "SiLU", "Sigmoid", "Softmax",
    "Softplus", "Softsign", "Tanh", "Weights",
]
