"""The seeds' small examples beyond images: a gated Highway net, a 1-D keyword spotter, a 3-D video CNN."""

from __future__ import annotations

from cnncompile.frontends.dsl import (
    BatchNorm, Conv, Flatten, GlobalAvgPool, GlobalMaxPool, Highway, Linear, MaxPool, Model, Relu, Sequential, Sigmoid,
)


def highway_block(width: int) -> Highway:
    """y = t(x) h(x) + (1 - t(x)) x with convolutional h and t (Srivastava et al. 2015)."""
    return Highway(Sequential(Conv(width, 3, pad=1), Relu()), Conv(width, 3, pad=1))


def highway_net(width: int = 32, blocks: int = 4, num_classes: int = 10) -> Model:
    """A CIFAR-sized stack of gated blocks, halving the resolution between pairs."""
    layers = [Conv(width, 3, pad=1, name="stem"), Relu(name="stem_relu")]
    for i in range(blocks):
        layers.append(highway_block(width))
        if i % 2 == 1:
            layers.append(MaxPool(2))
    return Model(Sequential(*layers, GlobalAvgPool(name="avgpool"), Flatten(name="flatten"),
                            Linear(num_classes, name="fc")), (1, 3, 32, 32), name="highway_net")


def welcome_detector(mel_bins: int = 40, frames: int = 101, window: int = 9) -> Model:
    """Does "Welcome" occur in this recording? The seeds' scanning MLP as a 1-D CNN over spectrogram frames.

    The MLP that classifies one `window`-frame patch becomes a conv over time (its first
    layer) and 1x1 convs (the rest); 3-wide max pooling at stride 2 and a 3-wide conv let
    adjacent windows combine their evidence; the maximum over all positions is the
    Boolean OR of "found it here", squashed to a probability.
    """
    return Model(Sequential(
        Conv(64, window, name="scan"), Relu(name="scan_relu"), MaxPool(3, stride=2, name="pool"),
        Conv(64, 3, name="combine"), Relu(name="combine_relu"),
        Conv(1, 1, name="score"), GlobalMaxPool(name="anywhere"), Flatten(name="flatten"), Sigmoid(name="probability"),
    ), (1, mel_bins, frames), name="welcome_detector")


def video_cnn(num_classes: int = 10) -> Model:
    """A small C3D-style net on 16-frame 112x112 clips: 3x3x3 convs, pooling space before time."""
    def stage(width: int, pool: tuple[int, int, int], name: str) -> Sequential:
        return Sequential(Conv(width, 3, pad=1, bias=False), BatchNorm(), Relu(), MaxPool(pool), name=name)

    return Model(Sequential(
        stage(16, (1, 2, 2), "stage1"), stage(32, (2, 2, 2), "stage2"), stage(64, (2, 2, 2), "stage3"),
        GlobalAvgPool(name="avgpool"), Flatten(name="flatten"), Linear(num_classes, name="fc"),
    ), (1, 3, 16, 112, 112), name="video_cnn")
