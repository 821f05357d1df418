"""ResNet-18/34/50 (He et al. 2015) and ResNeXt-50 32x4d (Xie et al. 2016), torchvision's layout and names.

A stage's first block changes resolution or width and so needs a projection shortcut
(a strided 1x1 conv and BN); the stride sits on the 3x3 conv (torchvision's "v1.5").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from cnncompile.frontends.dsl import (
    BatchNorm, Conv, Flatten, GlobalAvgPool, Linear, MaxPool, Model, Relu, Residual, Sequential,
)


def _conv_bn(out: int, kernel: int, stride: int = 1, groups: int = 1, n: int | str = "") -> list:
    return [Conv(out, kernel, stride=stride, pad=kernel // 2, groups=groups, bias=False, name=f"conv{n}"),
            BatchNorm(name=f"bn{n}")]


def _projection(out: int, stride: int) -> Sequential:
    return Sequential(Conv(out, 1, stride=stride, bias=False), BatchNorm())


def basic_block(planes: int, stride: int, project: bool) -> Residual:
    body = Sequential(*_conv_bn(planes, 3, stride, n=1), Relu(name="relu1"), *_conv_bn(planes, 3, n=2))
    return Residual(body, _projection(planes, stride) if project else None, after=Relu())


def bottleneck(planes: int, stride: int, project: bool, groups: int = 1, width_per_group: int = 64) -> Residual:
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand to 4x planes."""
    width = planes * width_per_group // 64 * groups
    body = Sequential(*_conv_bn(width, 1, n=1), Relu(name="relu1"),
                      *_conv_bn(width, 3, stride, groups, n=2), Relu(name="relu2"),
                      *_conv_bn(planes * 4, 1, n=3))
    return Residual(body, _projection(planes * 4, stride) if project else None, after=Relu())


def resnet(name: str, block: Callable[..., Residual], depths: tuple[int, ...], expansion: int,
           num_classes: int = 1000) -> Model:
    """Not strict: the 7x7 stride-2 stem and every stride-2 3x3 conv map even sizes down by floor rounding.

    `expansion` is how much wider a block's output is than its planes (4 for bottlenecks),
    which decides whether the very first block already needs a projection.
    """
    stages = [
        Sequential(*(block(planes, stride if i == 0 else 1, project=i == 0 and (stage > 0 or expansion > 1))
                     for i in range(depth)),
                   name=f"layer{stage + 1}")
        for stage, (planes, depth, stride) in enumerate(zip((64, 128, 256, 512), depths, (1, 2, 2, 2)))
    ]
    return Model(Sequential(
        *_conv_bn(64, 7, stride=2, n=1), Relu(name="relu"), MaxPool(3, stride=2, pad=1, name="maxpool"),
        *stages,
        GlobalAvgPool(name="avgpool"), Flatten(name="flatten"), Linear(num_classes, name="fc"),
    ), (1, 3, 224, 224), name=name, strict=False)


def resnet18() -> Model:
    return resnet("resnet18", basic_block, (2, 2, 2, 2), expansion=1)


def resnet34() -> Model:
    return resnet("resnet34", basic_block, (3, 4, 6, 3), expansion=1)


def resnet50() -> Model:
    return resnet("resnet50", bottleneck, (3, 4, 6, 3), expansion=4)


def resnext50_32x4d() -> Model:
    return resnet("resnext50_32x4d", partial(bottleneck, groups=32, width_per_group=4), (3, 4, 6, 3), expansion=4)
