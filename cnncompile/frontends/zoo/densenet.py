"""DenseNet-121 (Huang et al. 2017), torchvision's layout and names.

The seeds' x_l = H_l([x_0, ..., x_{l-1}]) is built incrementally: each dense layer
concatenates its input with the 32 new channels H_l computes from it (BN-ReLU-1x1 conv
to 4*32, BN-ReLU-3x3 conv to 32), so the l-th layer sees every earlier map.
"""

from __future__ import annotations

from cnncompile.frontends.dsl import (
    AvgPool, BatchNorm, Concat, Conv, Flatten, GlobalAvgPool, Identity, Linear, MaxPool, Model, Relu, Sequential,
)

GROWTH = 32
BOTTLENECK = 4


def dense_layer(index: int) -> Concat:
    h = Sequential(BatchNorm(name="norm1"), Relu(name="relu1"), Conv(BOTTLENECK * GROWTH, 1, bias=False, name="conv1"),
                   BatchNorm(name="norm2"), Relu(name="relu2"), Conv(GROWTH, 3, pad=1, bias=False, name="conv2"),
                   name="")
    return Concat(Identity(), h, name=f"denselayer{index}")


def transition(out: int, index: int) -> Sequential:
    """BN-ReLU-1x1 conv halving the channels, then 2x2 average pooling halving the resolution."""
    return Sequential(BatchNorm(name="norm"), Relu(name="relu"), Conv(out, 1, bias=False, name="conv"),
                      AvgPool(2, name="pool"), name=f"transition{index}")


def densenet121(num_classes: int = 1000) -> Model:
    """Not strict: the 7x7 stride-2 stem and the padded 3x3 stride-2 pool floor even sizes."""
    channels, features = 64, [Conv(64, 7, stride=2, pad=3, bias=False, name="conv0"), BatchNorm(name="norm0"),
                              Relu(name="relu0"), MaxPool(3, stride=2, pad=1, name="pool0")]
    for block, layers in enumerate((6, 12, 24, 16), start=1):
        features.append(Sequential(*(dense_layer(i) for i in range(1, layers + 1)), name=f"denseblock{block}"))
        channels += layers * GROWTH
        if block < 4:
            channels //= 2
            features.append(transition(channels, block))
    features.append(BatchNorm(name="norm5"))
    return Model(Sequential(
        Sequential(*features, name="features"), Relu(name="relu"),
        GlobalAvgPool(name="avgpool"), Flatten(name="flatten"), Linear(num_classes, name="classifier"),
    ), (1, 3, 224, 224), name="densenet121", strict=False)
