"""Random CNNs for differential testing: a seeded draw of layers (a `Spec`, spec.py and draw.py) and the
Graph it builds (build.py).

    spec = draw_spec(seed=7)        # deterministic per seed (numpy Generator)
    graph = build(spec)             # float32, verified, accepted by to_onnx and the importer
    print(to_python(spec))          # the spec as Python code, for a regression test

A spec is data, so a failure can be shrunk by removing layers from it (shrink.py): any
sub-sequence of a spec's layers still builds, because each layer adapts to what reaches it
instead of assuming what its neighbours were. A conv's groups become the gcd with the
channels it gets; a kernel that no longer fits the (padded) input loses its dilation, then
its size; a pool that does not fit is skipped. Inside a residual body every conv keeps its
input's shape (stride 1, "same" pads, as many channels out as in), and inside a concat
branch the spatial size, so that the Add and the Concat always typecheck.

Each layer carries its own `key`, from which its weights are drawn: removing one layer while
shrinking leaves the weights of the others as they were (where their shapes stay the same).
Shapes stay small (batch <= 2, channels <= 32, spatial <= 24) so that one compile is fast.
"""

from cnncompile.tools.random_cnn.build import build, random_inputs
from cnncompile.tools.random_cnn.draw import draw_spec
from cnncompile.tools.random_cnn.shrink import shrink
from cnncompile.tools.random_cnn.spec import (
    ACTIVATION_ATTRS, MAX_CHANNELS, Activation, ActivationLayer, BatchNormLayer, ConcatLayer, ConvLayer, Extra,
    ExtraLayer, GlobalPoolLayer, Grouping, Head, Layer, PadLayer, PoolLayer, Pooling, ResidualLayer, ScaleLayer, Spec,
    TapLayer, describe, to_python,
)

__all__ = [
    "ACTIVATION_ATTRS", "MAX_CHANNELS", "Activation", "ActivationLayer", "BatchNormLayer", "ConcatLayer", "ConvLayer",
    "Extra", "ExtraLayer", "GlobalPoolLayer", "Grouping", "Head", "Layer", "PadLayer", "PoolLayer", "Pooling",
    "ResidualLayer", "ScaleLayer", "Spec", "TapLayer", "build", "describe", "draw_spec", "random_inputs", "shrink",
    "to_python",
]
