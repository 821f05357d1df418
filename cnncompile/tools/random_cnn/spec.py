"""What a random CNN is made of: its layers as frozen data (a `Spec`), printable as the code that rebuilds it."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

MAX_CHANNELS = 32


class Grouping(enum.Enum):
    ONE = "one"
    GROUPED = "grouped"
    DEPTHWISE = "depthwise"


class Activation(enum.Enum):
    """Each one the ONNX op of its name (attributes as below), or none."""

    RELU = "Relu"
    RELU6 = "Clip"           # min 0, max 6
    LEAKY_RELU = "LeakyRelu"  # alpha 0.2
    SIGMOID = "Sigmoid"
    HARD_SIGMOID = "HardSigmoid"
    HARD_SWISH = "HardSwish"
    GELU = "Gelu"
    TANH = "Tanh"
    ELU = "Elu"
    SELU = "Selu"
    SOFTPLUS = "Softplus"
    PRELU = "PRelu"          # a slope per channel


ACTIVATION_ATTRS = {Activation.RELU6: dict(min=0.0, max=6.0), Activation.LEAKY_RELU: dict(alpha=0.2)}


class Pooling(enum.Enum):
    MAX = "MaxPool"
    AVERAGE = "AveragePool"


class Head(enum.Enum):
    """What follows the last layer: nothing (the feature map is the output) or a classifier."""

    NONE = "none"
    POOL_GEMM = "pool-gemm"          # GlobalAveragePool, Flatten, Gemm (transB)
    FLATTEN_GEMM = "flatten-gemm"    # Flatten of the whole map, Gemm
    POOL_MATMUL_ADD = "pool-matmul-add"


@dataclass(frozen=True)
class ConvLayer:
    key: int
    out: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right (ONNX order)
    grouping: Grouping = Grouping.ONE
    groups: int = 1       # for GROUPED; the channel multiplier for DEPTHWISE
    bias: bool = True


@dataclass(frozen=True)
class BatchNormLayer:
    key: int


@dataclass(frozen=True)
class ActivationLayer:
    key: int
    activation: Activation


@dataclass(frozen=True)
class PoolLayer:
    key: int
    pooling: Pooling
    kernel: int
    stride: int
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: int = 0
    count_include_pad: int = 0


@dataclass(frozen=True)
class GlobalPoolLayer:
    key: int
    pooling: Pooling


@dataclass(frozen=True)
class ScaleLayer:
    """Mul (or Add, with `add`) by a per-channel constant, (C, 1, 1) or a scalar: what fold-scale-shift folds."""

    key: int
    add: bool = False
    scalar: bool = False


@dataclass(frozen=True)
class PadLayer:
    """A zero Pad of the spatial axes (fold-pad folds it into a conv right after it)."""

    key: int
    pads: tuple[int, int, int, int]


@dataclass(frozen=True)
class ResidualLayer:
    """y + body(y) (or Sum, or the operands swapped), then an activation: what fuse-conv-epilogue fuses."""

    key: int
    body: tuple[Layer, ...]
    use_sum: bool = False
    swap: bool = False
    activation: Activation | None = None


@dataclass(frozen=True)
class ConcatLayer:
    """Concat along channels of branches each reading y (an empty branch is y itself)."""

    key: int
    branches: tuple[tuple[Layer, ...], ...]


class Extra(enum.Enum):
    """The ops beyond the classic CNN set (the op-coverage issue's), each where its shapes allow."""

    UPSAMPLE_NEAREST = "upsample-nearest"   # Resize x2, nearest (spatial <= 12)
    UPSAMPLE_LINEAR = "upsample-linear"     # Resize x2, linear, half_pixel
    DEPTH_TO_SPACE = "depth-to-space"       # blocksize 2, DCR or CRD by the key (channels % 4 == 0)
    LRN = "lrn"                             # size 3
    INSTANCE_NORM = "instance-norm"         # planes of more than one pixel
    SOFTMAX = "softmax"                     # over channels
    TRANSPOSES = "transposes"               # to NHWC and back: what simplify-movement cancels


@dataclass(frozen=True)
class ExtraLayer:
    key: int
    extra: Extra


@dataclass(frozen=True)
class TapLayer:
    """Make y a graph output as well: a value that fusion must not hide."""

    key: int


Layer = (ConvLayer | BatchNormLayer | ActivationLayer | PoolLayer | GlobalPoolLayer | ScaleLayer | PadLayer
         | ResidualLayer | ConcatLayer | ExtraLayer | TapLayer)


@dataclass(frozen=True)
class Spec:
    seed: int
    shape: tuple[int, int, int, int]  # the input's N, C, H, W
    layers: tuple[Layer, ...]
    head: Head = Head.NONE
    classes: int = 5

    def __str__(self) -> str:
        return f"seed {self.seed}: x{list(self.shape)} -> {describe(self.layers)} -> {self.head.value}"


def describe(layers: tuple[Layer, ...]) -> str:
    """A one-line summary of the layers (for messages; `to_python` is the full spec)."""
    words = []
    for layer in layers:
        if isinstance(layer, ConvLayer):
            words.append(f"conv{layer.kernel}x{layer.kernel}/s{layer.stride}/d{layer.dilation}/{layer.grouping.value}")
        elif isinstance(layer, ResidualLayer):
            words.append(f"residual[{describe(layer.body)}]")
        elif isinstance(layer, ConcatLayer):
            words.append("concat[" + " | ".join(describe(b) or "id" for b in layer.branches) + "]")
        elif isinstance(layer, ActivationLayer):
            words.append(layer.activation.name.lower())
        elif isinstance(layer, ExtraLayer):
            words.append(layer.extra.value)
        elif isinstance(layer, (PoolLayer, GlobalPoolLayer)):
            words.append(("global-" if isinstance(layer, GlobalPoolLayer) else "") + layer.pooling.name.lower())
        else:
            words.append(type(layer).__name__.removesuffix("Layer").lower())
    return ", ".join(words)



def to_python(value) -> str:
    """`value` (a Spec, a layer, ...) as a Python expression over this module's names."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if dataclasses.is_dataclass(value):
        fields = ", ".join(f"{f.name}={to_python(getattr(value, f.name))}" for f in dataclasses.fields(value)
                           if getattr(value, f.name) != f.default)
        return f"{type(value).__name__}({fields})"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(to_python, value)) + ("," if len(value) == 1 else "") + ")"
    return repr(value)
