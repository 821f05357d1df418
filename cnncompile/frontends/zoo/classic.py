"""The plain stacks of the seeds: LeNet-5, AlexNet, ZFNet, VGG-16/19 and Network-in-Network.

Layer names follow the papers (conv1, pool1, norm1, fc6, ...) so that a table of the
built graph reads like the seeds' layer lists.
"""

from __future__ import annotations

from cnncompile.frontends.dsl import (
    LRN, AvgPool, Conv, Dropout, Flatten, GlobalAvgPool, Linear, MaxPool, Model, Relu, Sequential, Tanh,
)


def lenet5(num_classes: int = 10) -> Model:
    """LeCun et al. 1998 on a 32x32 digit: [CONV-POOL-CONV-POOL-CONV-FC], 5x5 convs, 2x2 subsampling, tanh.

    C3 is fully connected to S2's six maps (the paper's sparse connection table is a
    training-time device) and the RBF output layer is a Linear.
    """
    return Model(Sequential(
        Conv(6, 5, name="c1"), Tanh(name="tanh1"), AvgPool(2, name="s2"),
        Conv(16, 5, name="c3"), Tanh(name="tanh3"), AvgPool(2, name="s4"),
        Conv(120, 5, name="c5"), Tanh(name="tanh5"), Flatten(name="flatten"),
        Linear(84, name="f6"), Tanh(name="tanh6"), Linear(num_classes, name="output"),
    ), (1, 1, 32, 32), name="lenet5")


def _fc_head(num_classes: int, first: int) -> list:
    """AlexNet's and VGG's classifier: two dropout-regularised 4096-wide layers, then the class scores."""
    return [
        Flatten(name="flatten"),
        Dropout(name=f"drop{first}"), Linear(4096, name=f"fc{first}"), Relu(name=f"relu{first}"),
        Dropout(name=f"drop{first + 1}"), Linear(4096, name=f"fc{first + 1}"), Relu(name=f"relu{first + 1}"),
        Linear(num_classes, name=f"fc{first + 2}"),
    ]


def alexnet(num_classes: int = 1000) -> Model:
    """Krizhevsky et al. 2012 on 227x227, layer for layer as the seeds list it (pool before norm).

    conv2, conv4 and conv5 keep the paper's two-GPU split as groups=2, which is what
    gives its 60M parameters (the seeds' simplified listing has the same shapes).
    """
    return Model(Sequential(
        Conv(96, 11, stride=4, name="conv1"), Relu(name="relu1"),
        MaxPool(3, stride=2, name="pool1"), LRN(5, bias=2.0, name="norm1"),
        Conv(256, 5, pad=2, groups=2, name="conv2"), Relu(name="relu2"),
        MaxPool(3, stride=2, name="pool2"), LRN(5, bias=2.0, name="norm2"),
        Conv(384, 3, pad=1, name="conv3"), Relu(name="relu3"),
        Conv(384, 3, pad=1, groups=2, name="conv4"), Relu(name="relu4"),
        Conv(256, 3, pad=1, groups=2, name="conv5"), Relu(name="relu5"),
        MaxPool(3, stride=2, name="pool5"),
        *_fc_head(num_classes, 6),
    ), (1, 3, 227, 227), name="alexnet")


def zfnet(num_classes: int = 1000) -> Model:
    """Zeiler & Fergus 2013: AlexNet with a 7x7 stride-2 first layer and a stride-2 conv2.

    The paper's sizes (224 -> 110 -> 55 -> 26 -> 13 -> 6) need floor rounding at conv1
    and ceil-mode pooling, as in its Caffe release, so the model is not strict.
    """
    return Model(Sequential(
        Conv(96, 7, stride=2, pad=1, name="conv1"), Relu(name="relu1"),
        MaxPool(3, stride=2, ceil=True, name="pool1"), LRN(5, bias=2.0, name="norm1"),
        Conv(256, 5, stride=2, name="conv2"), Relu(name="relu2"),
        MaxPool(3, stride=2, ceil=True, name="pool2"), LRN(5, bias=2.0, name="norm2"),
        Conv(384, 3, pad=1, name="conv3"), Relu(name="relu3"),
        Conv(384, 3, pad=1, name="conv4"), Relu(name="relu4"),
        Conv(256, 3, pad=1, name="conv5"), Relu(name="relu5"),
        MaxPool(3, stride=2, ceil=True, name="pool5"),
        *_fc_head(num_classes, 6),
    ), (1, 3, 224, 224), name="zfnet", strict=False)


def _vgg(name: str, blocks: tuple[int, ...], num_classes: int) -> Model:
    """Simonyan & Zisserman 2014: only 3x3 stride-1 pad-1 convs and 2x2 stride-2 max pools."""
    layers = []
    for block, (convs, width) in enumerate(zip(blocks, (64, 128, 256, 512, 512)), start=1):
        for i in range(1, convs + 1):
            layers += [Conv(width, 3, pad=1, name=f"conv{block}_{i}"), Relu(name=f"relu{block}_{i}")]
        layers.append(MaxPool(2, name=f"pool{block}"))
    return Model(Sequential(*layers, *_fc_head(num_classes, 6)), (1, 3, 224, 224), name=name)


def vgg16(num_classes: int = 1000) -> Model:
    return _vgg("vgg16", (2, 2, 3, 3, 3), num_classes)


def vgg19(num_classes: int = 1000) -> Model:
    return _vgg("vgg19", (2, 2, 4, 4, 4), num_classes)


def _mlpconv(out: int, kernel: int, stride: int, pad: int, name: str) -> Sequential:
    """NiN's micro network: a kxk conv followed by two 1x1 convs, i.e. an MLP scanned over the image."""
    return Sequential(Conv(out, kernel, stride=stride, pad=pad), Relu(), Conv(out, 1), Relu(), Conv(out, 1), Relu(),
                      name=name)


def nin(num_classes: int = 1000) -> Model:
    """Lin et al. 2013, ImageNet variant: mlpconv blocks and a global-average-pooled class map, no FC layers."""
    return Model(Sequential(
        _mlpconv(96, 11, 4, 0, "block1"), MaxPool(3, stride=2, name="pool1"),
        _mlpconv(256, 5, 1, 2, "block2"), MaxPool(3, stride=2, name="pool2"),
        _mlpconv(384, 3, 1, 1, "block3"), MaxPool(3, stride=2, name="pool3"),
        Dropout(name="drop"),
        _mlpconv(num_classes, 3, 1, 1, "block4"),
        GlobalAvgPool(name="gap"), Flatten(name="flatten"),
    ), (1, 3, 227, 227), name="nin")
