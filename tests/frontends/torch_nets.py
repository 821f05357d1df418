"""Small CNNs in plain PyTorch (no torchvision), one per architecture family cnncompile targets.

Each keeps its family's structure (residual BasicBlocks; inverted residuals with depthwise
convs and ReLU6; grouped bottlenecks; an encoder-decoder with ConvTranspose and Resize; 1-D
convs) at a few channels and a small resolution, so that exporting and running it is quick.
`build` initialises the weights He-normal and gives every BatchNorm random statistics, so
that no layer is an identity.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, dims: int = 2) -> list[nn.Module]:
    conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(c_in, c_out, k, stride, k // 2, groups=groups, bias=False)
    return [conv, (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(c_out)]


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convs with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(c_in, c_out, 3, stride), nn.ReLU(), *conv_bn(c_out, c_out, 3))
        self.shortcut = nn.Sequential(*conv_bn(c_in, c_out, 1, stride)) if stride != 1 or c_in != c_out \
            else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18's layout (7x7 stem, max pool, four stages of two BasicBlocks, GAP, FC), narrow."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 24, 32), classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = [*conv_bn(3, widths[0], 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        c_in = widths[0]
        for stage, width in enumerate(widths):
            layers += [BasicBlock(c_in, width, 1 if stage == 0 else 2), BasicBlock(width, width, 1)]
            c_in = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 linear projection; residual at stride 1."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        self.residual = stride == 1 and c_in == c_out
        self.body = nn.Sequential(
            *conv_bn(c_in, hidden, 1), nn.ReLU6(),
            *conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(),
            *conv_bn(hidden, c_out, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn(3, 8, 3, 2), nn.ReLU6(),
            InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2, 6), InvertedResidual(12, 12, 1, 6),
            InvertedResidual(12, 16, 2, 6), InvertedResidual(16, 16, 1, 6),
            *conv_bn(16, 64, 1), nn.ReLU6(),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


class ResNeXtBlock(nn.Module):
    """ResNeXt's bottleneck: 1x1 reduce, 3x3 grouped conv (cardinality 8), 1x1 expand, projection shortcut."""

    def __init__(self, c_in: int = 16, width: int = 32, c_out: int = 32, cardinality: int = 8, stride: int = 2):
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn(c_in, width, 1), nn.ReLU(),
            *conv_bn(width, width, 3, stride, groups=cardinality), nn.ReLU(),
            *conv_bn(width, c_out, 1),
        )
        self.shortcut = nn.Sequential(*conv_bn(c_in, c_out, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class UNetBlock(nn.Module):
    """Two-level encoder-decoder: ConvTranspose up one level, nearest Upsample up the other,
    skip connections by concatenation, and bilinear side outputs (half-pixel and align-corners)."""

    def __init__(self, c: int = 8, classes: int = 3):
        super().__init__()
        self.enc1 = nn.Sequential(*conv_bn(3, c, 3), nn.ReLU(), *conv_bn(c, c, 3), nn.ReLU())
        self.enc2 = nn.Sequential(*conv_bn(c, 2 * c, 3), nn.ReLU())
        self.bottom = nn.Sequential(*conv_bn(2 * c, 4 * c, 3), nn.ReLU())
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = nn.Sequential(*conv_bn(4 * c, 2 * c, 3), nn.ReLU())
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec1 = nn.Sequential(*conv_bn(3 * c, c, 3), nn.ReLU())
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        side = F.interpolate(b, size=x.shape[2:], mode="bilinear", align_corners=False)
        corners = F.interpolate(d2, scale_factor=2.0, mode="bilinear", align_corners=True)
        return self.head(d1) + side[:, :3] + corners[:, :3]


class Conv1dNet(nn.Module):
    """A 1-D signal classifier: strided, dilated and pooled Conv1d layers, then GAP and FC."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn(2, 8, 5, 2, dims=1), nn.LeakyReLU(0.1), nn.MaxPool1d(2),
            nn.Conv1d(8, 16, 3, padding=2, dilation=2), nn.ReLU(), nn.AvgPool1d(2),
            *conv_bn(16, 16, 3, groups=4, dims=1), nn.ReLU(),
        )
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool1d(self.features(x), 1), 1))


# name -> (constructor, input shape with batch 2)
NETS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "resnet18": (ResNet18, (2, 3, 32, 32)),
    "mobilenetv2": (MobileNetV2, (2, 3, 32, 32)),
    "resnext_block": (ResNeXtBlock, (2, 16, 12, 12)),
    "unet_block": (UNetBlock, (2, 3, 16, 16)),
    "conv1d_net": (Conv1dNet, (2, 2, 64)),
}


def build(name: str, seed: int) -> nn.Module:
    """The named net in eval mode, He-initialised, BatchNorms with random statistics."""
    torch.manual_seed(seed)
    net = NETS[name][0]()
    for module in net.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.normal_(module.bias, std=0.1)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.normal_(module.bias, std=0.1)
            module.running_mean.normal_(std=0.1)
            module.running_var.uniform_(0.5, 1.5)
    return net.eval()
