"""Parameter-frugal nets: MobileNetV2 (depthwise separable), ShuffleNet v1 (grouped 1x1 + shuffle), SqueezeNet."""

from __future__ import annotations

from cnncompile.frontends.dsl import (
    AvgPool, BatchNorm, ChannelShuffle, Concat, Conv, DepthwiseConv, Dropout, Flatten, GlobalAvgPool, Linear,
    MaxPool, Model, Relu, ReLU6, Residual, Sequential,
)

# MobileNetV2's inverted-residual stages (Sandler et al. 2018, Table 2): expansion t, channels c, repeats n, stride s.
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu6(out: int, kernel: int, stride: int = 1) -> Sequential:
    return Sequential(Conv(out, kernel, stride=stride, pad=kernel // 2, bias=False), BatchNorm(), ReLU6())


def inverted_residual(inp: int, out: int, stride: int, t: int) -> Residual | Sequential:
    """1x1 expand (skipped when t = 1), 3x3 depthwise, linear 1x1 project; a skip when shapes allow.

    Either way the layers sit under "conv" in the block, as torchvision names them.
    """
    hidden = inp * t
    expand = [_conv_bn_relu6(hidden, 1)] if t != 1 else []
    body = Sequential(*expand,
                      Sequential(DepthwiseConv(3, stride=stride, pad=1, bias=False), BatchNorm(), ReLU6()),
                      Conv(out, 1, bias=False), BatchNorm(), name="conv")
    return Residual(body) if stride == 1 and inp == out else Sequential(body)


def mobilenet_v2(num_classes: int = 1000) -> Model:
    """torchvision's MobileNetV2 (width 1.0); not strict, as its stride-2 3x3 convs floor even sizes."""
    features, channels = [_conv_bn_relu6(32, 3, stride=2)], 32
    for t, c, n, s in MOBILENET_V2_STAGES:
        for i in range(n):
            features.append(inverted_residual(channels, c, s if i == 0 else 1, t))
            channels = c
    features.append(_conv_bn_relu6(1280, 1))
    return Model(Sequential(
        Sequential(*features, name="features"), GlobalAvgPool(name="avgpool"), Flatten(name="flatten"),
        Sequential(Dropout(0.2), Linear(num_classes), name="classifier"),
    ), (1, 3, 224, 224), name="mobilenet_v2", strict=False)


def shuffle_unit(inp: int, out: int, stride: int, groups: int, group_first: bool) -> Residual | Concat:
    """Zhang et al. 2017, Fig. 2: grouped 1x1, shuffle, 3x3 depthwise, grouped 1x1.

    At stride 1 the unit adds its input back; at stride 2 it concatenates a 3x3 average
    pooled copy of the input, so the body only adds out - inp channels. The first unit
    of the network does not group its first 1x1, whose input has only 24 channels.
    """
    mid = out // 4
    new = out - inp if stride == 2 else out
    body = Sequential(
        Conv(mid, 1, groups=groups if group_first else 1, bias=False, name="gconv1"), BatchNorm(name="bn1"),
        Relu(name="relu1"), ChannelShuffle(groups, name="shuffle"),
        DepthwiseConv(3, stride=stride, pad=1, bias=False, name="dwconv"), BatchNorm(name="bn2"),
        Conv(new, 1, groups=groups, bias=False, name="gconv2"), BatchNorm(name="bn3"), name="",
    )
    if stride == 1:
        return Residual(body, after=Relu())
    return Concat(AvgPool(3, stride=2, pad=1, name="shortcut"), body, after=Relu())


def shufflenet_v1(groups: int = 3, num_classes: int = 1000) -> Model:
    """ShuffleNet 1x with g = 3 (output channels 240, 480, 960); not strict, as its stride-2 layers floor."""
    widths = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}[groups]
    stages, channels = [], 24
    for stage, (repeats, out) in enumerate(zip((4, 8, 4), (widths, widths * 2, widths * 4)), start=2):
        units = [shuffle_unit(channels if i == 0 else out, out, 2 if i == 0 else 1, groups,
                              group_first=not (stage == 2 and i == 0)) for i in range(repeats)]
        stages.append(Sequential(*units, name=f"stage{stage}"))
        channels = out
    return Model(Sequential(
        Conv(24, 3, stride=2, pad=1, bias=False, name="conv1"), BatchNorm(name="bn1"), Relu(name="relu1"),
        MaxPool(3, stride=2, pad=1, name="maxpool"), *stages,
        GlobalAvgPool(name="avgpool"), Flatten(name="flatten"), Linear(num_classes, name="fc"),
    ), (1, 3, 224, 224), name=f"shufflenet_v1_g{groups}", strict=False)


def fire(squeeze: int, expand: int, name: str) -> Sequential:
    """Iandola et al. 2016: a 1x1 squeeze, then 1x1 and 3x3 expands side by side, concatenated."""
    return Sequential(
        Conv(squeeze, 1, name="squeeze"), Relu(name="squeeze_activation"),
        Concat(Sequential(Conv(expand, 1), Relu(), name="expand1x1"),
               Sequential(Conv(expand, 3, pad=1), Relu(), name="expand3x3"), name="expand"),
        name=name,
    )


def _squeezenet(name: str, stem: list, pool_after: tuple[int, ...], num_classes: int) -> Model:
    """Pools are 3x3 stride 2 in ceil mode, as released (Caffe pools round up)."""
    plan = ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256))
    features = list(stem)
    for index, (squeeze, expand) in enumerate(plan, start=2):
        features.append(fire(squeeze, expand, f"fire{index}"))
        if index in pool_after:
            features.append(MaxPool(3, stride=2, ceil=True, name=f"pool{index}"))
    return Model(Sequential(
        Sequential(*features, name="features"),
        Sequential(Dropout(), Conv(num_classes, 1, name="conv10"), Relu(), GlobalAvgPool(), name="classifier"),
        Flatten(name="flatten"),
    ), (1, 3, 227, 227), name=name)


def squeezenet1_0(num_classes: int = 1000) -> Model:
    """The paper's SqueezeNet on 227x227, where every window fits exactly: 111, 55, 27, 13."""
    stem = [Conv(96, 7, stride=2, name="conv1"), Relu(name="relu1"), MaxPool(3, stride=2, ceil=True, name="pool1")]
    return _squeezenet("squeezenet1_0", stem, (4, 8), num_classes)


def squeezenet1_1(num_classes: int = 1000) -> Model:
    """SqueezeNet 1.1: a 3x3 stem and earlier pooling, 2.4x less computation than 1.0."""
    stem = [Conv(64, 3, stride=2, name="conv1"), Relu(name="relu1"), MaxPool(3, stride=2, ceil=True, name="pool1")]
    return _squeezenet("squeezenet1_1", stem, (3, 5), num_classes)
