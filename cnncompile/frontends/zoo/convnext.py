"""ConvNeXt-T (Liu et al. 2022): a ResNet modernised with depthwise 7x7 convs, LayerNorm and GELU.

Block: 7x7 depthwise conv, LayerNorm over channels, 1x1 conv to 4x width, GELU, 1x1
conv back, a learned per-channel scale, and the identity added back. The paper's
pointwise Linear layers are written as 1x1 convs, which hold the same weights and do
the same multiply-adds without leaving the channels-first layout.
"""

from __future__ import annotations

from cnncompile.frontends.dsl import (
    Conv, DepthwiseConv, Flatten, Gelu, GlobalAvgPool, LayerNorm, LayerScale, Linear, Model, NormOver, Residual,
    Sequential,
)

EPSILON = 1e-6


def convnext_block(dim: int) -> Residual:
    return Residual(Sequential(
        DepthwiseConv(7, pad=3, name="dwconv"), LayerNorm(epsilon=EPSILON, name="norm"),
        Conv(4 * dim, 1, name="pwconv1"), Gelu(name="act"), Conv(dim, 1, name="pwconv2"),
        LayerScale(name="layer_scale"),
    ))


def convnext(name: str, depths: tuple[int, ...], dims: tuple[int, ...], num_classes: int = 1000) -> Model:
    """Strict: the 4x4 stride-4 patchify stem and the 2x2 stride-2 downsamplers tile 224 exactly."""
    layers = [Sequential(Conv(dims[0], 4, stride=4), LayerNorm(epsilon=EPSILON), name="stem")]
    for stage, (depth, dim) in enumerate(zip(depths, dims)):
        if stage:
            layers.append(Sequential(LayerNorm(epsilon=EPSILON), Conv(dim, 2, stride=2), name=f"downsample{stage}"))
        layers.append(Sequential(*(convnext_block(dim) for _ in range(depth)), name=f"stage{stage + 1}"))
    return Model(Sequential(
        *layers, GlobalAvgPool(name="avgpool"), Flatten(name="flatten"),
        LayerNorm(NormOver.FEATURES, epsilon=EPSILON, name="norm"), Linear(num_classes, name="head"),
    ), (1, 3, 224, 224), name=name)


def convnext_tiny() -> Model:
    return convnext("convnext_tiny", (3, 3, 9, 3), (96, 192, 384, 768))
