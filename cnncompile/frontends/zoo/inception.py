"""GoogLeNet / Inception-v1 (Szegedy et al. 2014), as in the seeds' table.

Each inception module runs four branches on one input and concatenates them: 1x1;
1x1 reduce then 3x3; 1x1 reduce then 5x5; 3x3 max pool then a 1x1 projection. The
auxiliary classifiers only matter for training and are left out.
"""

from __future__ import annotations

from cnncompile.frontends.dsl import (
    LRN, Concat, Conv, Dropout, Flatten, GlobalAvgPool, Linear, MaxPool, Model, Relu, Sequential,
)

# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), the seeds' table row by row.
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _conv_relu(out: int, kernel: int, pad: int = 0) -> list:
    return [Conv(out, kernel, pad=pad), Relu()]


def inception(c1: int, c3r: int, c3: int, c5r: int, c5: int, proj: int, name: str) -> Concat:
    return Concat(
        Sequential(*_conv_relu(c1, 1)),
        Sequential(*_conv_relu(c3r, 1), *_conv_relu(c3, 3, pad=1)),
        Sequential(*_conv_relu(c5r, 1), *_conv_relu(c5, 5, pad=2)),
        Sequential(MaxPool(3, stride=1, pad=1), *_conv_relu(proj, 1)),
        name=f"inception{name}",
    )


def _pool(name: str) -> MaxPool:
    """3x3 stride-2 pooling in ceil mode, as in the Caffe release: 112 -> 56 -> 28 -> 14 -> 7."""
    return MaxPool(3, stride=2, ceil=True, name=name)


def googlenet(num_classes: int = 1000) -> Model:
    """Not strict: the 7x7 stride-2 stem maps 224 to 112 only with floor rounding."""
    stage = {k: inception(*v, name=k) for k, v in MODULES.items()}
    return Model(Sequential(
        Conv(64, 7, stride=2, pad=3, name="conv1"), Relu(name="relu1"), _pool("pool1"), LRN(5, name="norm1"),
        Conv(64, 1, name="conv2_reduce"), Relu(name="relu2_reduce"),
        Conv(192, 3, pad=1, name="conv2"), Relu(name="relu2"), LRN(5, name="norm2"), _pool("pool2"),
        stage["3a"], stage["3b"], _pool("pool3"),
        stage["4a"], stage["4b"], stage["4c"], stage["4d"], stage["4e"], _pool("pool4"),
        stage["5a"], stage["5b"],
        GlobalAvgPool(name="avgpool"), Flatten(name="flatten"), Dropout(0.4, name="dropout"),
        Linear(num_classes, name="fc"),
    ), (1, 3, 224, 224), name="googlenet", strict=False)
