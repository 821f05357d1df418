"""Single-node graphs covering every op and the attribute corners its lowering must honour.

Each case draws fresh seeded operands: activations become graph inputs, weights and
other fixed operands graph constants (as an importer would leave them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnncompile.algorithms.windows import AutoPad
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import REGISTRY
from cnncompile.ops.elementwise import ClipAttrs, GeluApproximation, LeakyReluAttrs
from cnncompile.ops.fused import Activation
from cnncompile.ops.registry import NoAttrs
from cnncompile.ops.resize import CoordinateTransformationMode, NearestMode, ResizeMode
from cnncompile.ops.tensor import DepthToSpaceMode, PadMode

Draw = Callable[[np.random.Generator], np.ndarray]


def normal(*shape: int, scale: float = 1.0, dtype: str = "float32") -> Draw:
    return lambda rng: (rng.standard_normal(shape) * scale).astype(dtype)


def he(*shape: int) -> Draw:
    fan_in = int(np.prod(shape[1:])) or 1
    return lambda rng: (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def positive(*shape: int) -> Draw:
    return lambda rng: rng.uniform(0.5, 1.5, shape).astype(np.float32)


def integers(*shape: int, low: int, high: int, dtype: str = "int64") -> Draw:
    return lambda rng: rng.integers(low, high, shape).astype(dtype)


@dataclass(frozen=True)
class Case:
    op: str
    inputs: tuple[Draw, ...]
    constant: tuple[int, ...] = ()      # positions of operands that are graph constants
    attrs: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def build(self, seed: int = 0) -> tuple[Graph, dict[str, np.ndarray]]:
        rng = np.random.default_rng(seed)
        graph = Graph(self.id or self.op)
        feeds: dict[str, np.ndarray] = {}
        values = []
        for position, draw in enumerate(self.inputs):
            array = draw(rng)
            if position in self.constant:
                values.append(graph.add_constant(array, f"c{position}"))
            else:
                value = graph.add_input(f"x{position}", TensorType(array.shape, DType.of(array.dtype)))
                feeds[value.name] = array
                values.append(value)
        outputs = graph.add_node(REGISTRY[self.op], values, **self.attrs)
        graph.mark_outputs(*outputs)
        return graph, feeds


def case(op: str, *inputs: Draw, constant: tuple[int, ...] = (), id: str = "", **attrs: Any) -> Case:
    return Case(op, inputs, constant, attrs, id or op)


X = normal(2, 3, 5, 6, scale=2.0)
UNARY = ["Relu", "Sigmoid", "Tanh", "HardSwish", "Softplus", "Softsign", "Identity", "Selu"]

CASES: list[Case] = [
    *(case(op, X) for op in UNARY),
    case("Sigmoid", normal(4, 64, scale=40.0), id="Sigmoid-saturated"),
    case("LeakyRelu", X, alpha=0.1),
    case("Elu", X, alpha=0.7),
    case("HardSigmoid", X, alpha=0.3, beta=0.4),
    case("Gelu", X),
    case("Gelu", X, approximate=GeluApproximation.TANH, id="Gelu-tanh"),
    case("Clip", X, min=-0.5, max=1.0),
    case("Clip", X, min=0.0, id="Clip-min-only"),
    case("Clip", integers(3, 7, low=-9, high=9, dtype="int32"), min=-2.5, max=3.5, id="Clip-int"),
    case("PRelu", X, normal(3, 1, 1), constant=(1,)),
    case("Add", X, normal(3, 1, 6), id="Add-broadcast"),
    case("Sub", normal(4, 1), normal(5)),
    case("Mul", X, normal(1, 3, 5, 6)),
    case("Div", X, positive(6)),
    case("Div", integers(4, 5, low=-20, high=20, dtype="int32"), integers(5, low=1, high=6, dtype="int32"),
         id="Div-int-truncates"),
    case("Sum", X, normal(5, 6), normal(3, 1, 1)),
    case("Cast", X, to=DType.INT32),
    case("Cast", integers(3, 4, low=-5, high=5), to=DType.FLOAT32, id="Cast-int-to-float"),
    case("Cast", X, to=DType.BOOL, id="Cast-to-bool"),
    case("Dropout", X),
    case("LayoutTransform", X, id="LayoutTransform-logical"),  # every layout: tests/backends/tvm/test_layouts.py
    case("ChannelAffine", X, normal(3, 1, 1), normal(3, 1, 1), constant=(1, 2),
         activation=Activation.RELU, activation_attrs=NoAttrs()),
    case("ChannelAffine", X, normal(3, 1, 1), normal(3, 1, 1), constant=(1, 2),
         activation=Activation.LEAKY_RELU, activation_attrs=LeakyReluAttrs(0.2), id="ChannelAffine-leaky"),
    # convolutions
    case("Conv", normal(1, 8, 12, 12), he(16, 8, 3, 3), normal(16), constant=(1, 2), pads=(1, 1, 1, 1)),
    case("Conv", normal(2, 4, 9, 11), he(6, 2, 3, 2), constant=(1,), group=2, strides=(2, 1),
         pads=(1, 0, 2, 1), dilations=(1, 2), id="Conv-grouped-strided-dilated"),
    case("Conv", normal(1, 8, 10, 10), he(8, 1, 3, 3), normal(8), constant=(1, 2), group=8, pads=(1, 1, 1, 1),
         id="Conv-depthwise"),
    case("Conv", normal(1, 16, 7, 7), he(24, 16, 1, 1), constant=(1,), id="Conv-1x1"),
    case("Conv", normal(1, 3, 15, 15), he(8, 3, 7, 7), constant=(1,), strides=(2, 2), pads=(3, 3, 3, 3),
         id="Conv-7x7-stride2"),
    case("Conv", normal(1, 3, 8, 6), he(2, 3, 4, 3), constant=(1,), strides=(3, 2), auto_pad=AutoPad.SAME_LOWER,
         id="Conv-same-lower"),
    case("Conv", normal(2, 5, 17), he(4, 5, 5), constant=(1,), strides=(2,), pads=(2, 1), dilations=(2,),
         id="Conv-1d"),
    case("Conv", normal(1, 2, 5, 6, 7), he(3, 2, 3, 2, 3), constant=(1,), pads=(1, 0, 1, 1, 1, 0),
         strides=(1, 2, 2), id="Conv-3d"),
    case("Conv", normal(1, 4, 6, 6), normal(5, 4, 3, 3), id="Conv-weights-as-input"),
    # blocked (weights packed by output-channel vectors on a CPU): groups, strides, other ranks
    case("Conv", normal(1, 8, 10, 10), he(32, 4, 3, 3), normal(32), constant=(1, 2), group=2, strides=(2, 2),
         pads=(1, 1, 1, 1), id="Conv-blocked-grouped-strided"),
    case("Conv", normal(1, 6, 20), he(16, 6, 3), constant=(1,), pads=(1, 1), id="Conv-blocked-1d"),
    case("Conv", normal(1, 3, 4, 6, 8), he(8, 3, 1, 3, 3), constant=(1,), pads=(0, 1, 1, 0, 1, 1),
         id="Conv-blocked-3d"),
    case("FusedConv", normal(1, 8, 9, 9), he(8, 8, 3, 3), normal(8), normal(1, 8, 9, 9), constant=(1, 2),
         pads=(1, 1, 1, 1), activation=Activation.RELU, activation_attrs=NoAttrs(), id="FusedConv-residual-relu"),
    case("FusedConv", normal(1, 6, 8, 8), he(12, 6, 1, 1), normal(12), constant=(1, 2),
         activation=Activation.CLIP, activation_attrs=ClipAttrs(0.0, 6.0), id="FusedConv-relu6"),
    case("FusedConv", normal(1, 6, 8, 8), he(6, 1, 3, 3), normal(6), constant=(1, 2), group=6,
         pads=(1, 1, 1, 1), activation=Activation.SILU, activation_attrs=NoAttrs(), id="FusedConv-depthwise-silu"),
    case("FusedConv", normal(1, 4, 6, 6), he(4, 4, 3, 3), normal(4), normal(1, 4, 6, 6), constant=(1, 2),
         pads=(1, 1, 1, 1), id="FusedConv-residual-only"),
    case("ConvTranspose", normal(1, 3, 5, 5), he(3, 2, 3, 3), normal(2), constant=(1, 2)),
    case("ConvTranspose", normal(2, 4, 4, 5), he(4, 3, 3, 2), constant=(1,), strides=(2, 3), pads=(1, 0, 2, 1),
         output_padding=(1, 2), id="ConvTranspose-strided-padded"),
    case("ConvTranspose", normal(1, 4, 5, 5), he(4, 2, 3, 3), constant=(1,), group=2, strides=(2, 2),
         dilations=(2, 1), id="ConvTranspose-grouped-dilated"),
    case("ConvTranspose", normal(1, 2, 4, 4), he(2, 2, 3, 3), constant=(1,), strides=(2, 2), output_shape=(9, 9),
         id="ConvTranspose-output-shape"),
    # pooling
    case("MaxPool", normal(1, 3, 11, 11), kernel_shape=(3, 3), strides=(2, 2), ceil_mode=1),
    case("MaxPool", normal(2, 2, 9, 8), kernel_shape=(3, 2), pads=(1, 0, 1, 1), dilations=(2, 1),
         id="MaxPool-padded-dilated"),
    # padded strip by strip of output rows: 3-D strips of depth, 1-D (one pooled axis, vectorized) padded whole
    case("MaxPool", normal(1, 2, 5, 6, 7), kernel_shape=(3, 3, 3), strides=(2, 2, 2), pads=(1, 1, 1, 1, 1, 1),
         id="MaxPool-3d-padded"),
    case("MaxPool", normal(1, 2, 15), kernel_shape=(3,), strides=(2,), pads=(1, 1), id="MaxPool-1d-padded"),
    case("MaxPool", integers(1, 2, 6, 6, low=-100, high=100, dtype="int8"), kernel_shape=(2, 2), strides=(2, 2),
         id="MaxPool-int8"),
    case("AveragePool", normal(1, 3, 10, 10), kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
         ceil_mode=1),
    case("AveragePool", normal(1, 3, 10, 10), kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
         ceil_mode=1, count_include_pad=1, id="AveragePool-count-pad"),
    case("AveragePool", normal(1, 2, 14), kernel_shape=(4,), strides=(3,), id="AveragePool-1d"),
    case("GlobalAveragePool", normal(2, 16, 7, 7)),
    case("GlobalMaxPool", normal(2, 16, 5, 6)),
    # reductions and normalizations
    case("Softmax", normal(2, 10, scale=3.0)),
    case("Softmax", normal(2, 5, 3, 4), axis=1, id="Softmax-axis1"),
    case("LogSoftmax", normal(3, 7, scale=3.0)),
    case("ReduceMean", X, axes=(2, 3)),
    case("ReduceMean", X, axes=(1,), keepdims=0, id="ReduceMean-dropdims"),
    case("ReduceMean", X, id="ReduceMean-all"),
    case("BatchNormalization", X, positive(3), normal(3), normal(3), positive(3), constant=(1, 2, 3, 4)),
    case("LayerNormalization", normal(2, 5, 16), positive(16), normal(16), constant=(1, 2), epsilon=1e-3),
    case("LayerNormalization", normal(2, 4, 3, 3), positive(4, 3, 3), constant=(1,), axis=1,
         id="LayerNormalization-axis1"),
    case("InstanceNormalization", X, positive(3), normal(3), constant=(1, 2)),
    case("LRN", normal(1, 7, 4, 4), size=3, alpha=1e-2, beta=0.75, bias=2.0),
    # linear algebra
    case("Gemm", normal(4, 32), he(32, 24), normal(24), constant=(1, 2)),
    case("Gemm", normal(24, 3), normal(16, 24), normal(3, 1), transA=1, transB=1, alpha=0.5, beta=2.0,
         id="Gemm-transposed-scaled"),
    case("Gemm", normal(1, 64), he(40, 64), normal(40), constant=(1, 2), transB=1, id="Gemm-fc"),
    # N filling no whole vector: the blocked product computes zero-padded columns and stores only N
    case("Gemm", normal(1, 48), he(37, 48), normal(37), constant=(1, 2), transB=1, id="Gemm-fc-ragged"),
    case("Gemm", normal(3, 16), he(16, 21), constant=(1,), id="Gemm-ragged-no-bias"),
    case("MatMul", normal(2, 3, 5, 8), normal(3, 8, 6)),
    case("MatMul", normal(7), normal(2, 7, 4), id="MatMul-vector-left"),
    case("MatMul", normal(3, 7), normal(7), id="MatMul-vector-right"),
    # data movement and shapes
    case("Concat", normal(1, 2, 4, 4), normal(1, 5, 4, 4), normal(1, 3, 4, 4), axis=1),
    case("Concat", normal(2, 3), normal(2, 4), axis=-1, id="Concat-last-axis"),
    case("Split", normal(2, 9, 4), axis=1, split=(2, 3, 4)),
    case("Split", normal(7, 3), num_outputs=3, id="Split-num-outputs"),
    case("Reshape", X, shape=(2, -1, 6)),
    case("Flatten", X, axis=2),
    case("Transpose", X, perm=(0, 2, 3, 1)),
    case("Transpose", normal(3, 4, 5), id="Transpose-reversed"),
    case("Squeeze", normal(2, 1, 5, 1), axes=(1,)),
    case("Unsqueeze", normal(3, 4), axes=(0, 3)),
    case("Pad", X, pads=(0, 0, 1, 2, 0, 0, 2, 1), constant_value=1.5),
    case("Pad", X, pads=(0, 0, 2, 2, 0, 0, 1, 3), mode=PadMode.REFLECT, id="Pad-reflect"),
    case("Pad", X, pads=(0, 1, 3, 1, 0, 0, 2, 4), mode=PadMode.EDGE, id="Pad-edge"),
    case("Pad", X, pads=(0, 0, 4, 7, 0, 0, 3, 8), mode=PadMode.WRAP, id="Pad-wrap"),
    case("Pad", X, pads=(0, 0, -1, 2, 0, 0, 2, -2), id="Pad-crop"),
    case("DepthToSpace", normal(1, 8, 3, 2), blocksize=2),
    case("DepthToSpace", normal(1, 18, 2, 3), blocksize=3, mode=DepthToSpaceMode.CRD, id="DepthToSpace-CRD"),
    case("Gather", normal(5, 4, 3), integers(2, 3, low=-5, high=5), constant=(1,), axis=0),
    case("Gather", normal(3, 6), integers(4, low=-6, high=6, dtype="int32"), axis=1, id="Gather-axis1"),
    case("Slice", X, starts=(1, -1), ends=(3, 0), axes=(2, 3), steps=(1, -2)),
    case("Shape", X, start=1),
    case("Constant", value=np.arange(6, dtype=np.float32).reshape(2, 3)),
    case("ConstantOfShape", shape=(2, 3), value=np.array([7], dtype=np.int64)),
    case("Resize", normal(1, 2, 4, 5), scales=(1.0, 1.0, 2.0, 1.5)),
    case("Resize", normal(1, 2, 4, 5), sizes=(1, 2, 7, 3), mode=ResizeMode.LINEAR,
         coordinate_transformation_mode=CoordinateTransformationMode.ALIGN_CORNERS, id="Resize-linear-corners"),
    case("Resize", normal(1, 2, 6, 6), scales=(1.0, 1.0, 0.6, 1.7), mode=ResizeMode.NEAREST,
         nearest_mode=NearestMode.CEIL, coordinate_transformation_mode=CoordinateTransformationMode.ASYMMETRIC,
         id="Resize-nearest-ceil"),
    case("Resize", normal(1, 1, 5, 5), sizes=(1, 1, 4, 4), mode=ResizeMode.LINEAR,
         coordinate_transformation_mode=CoordinateTransformationMode.TF_CROP_AND_RESIZE,
         roi=(0.0, 0.0, 0.2, -0.3, 1.0, 1.0, 1.3, 0.9), extrapolation_value=-7.0, id="Resize-tf-crop"),
]

# Op families' cases, each in its own module (imported last: they build on the helpers above).
from cases_math import CASES as _MATH_CASES  # noqa: E402
from cases_indexing import CASES as _INDEXING_CASES  # noqa: E402
from cases_reduce import CASES as _REDUCE_CASES  # noqa: E402
from cases_quantize import CASES as _QUANTIZE_CASES  # noqa: E402
from cases_sampling import CASES as _SAMPLING_CASES  # noqa: E402
from cases_attention import CASES as _ATTENTION_CASES  # noqa: E402

CASES += _REDUCE_CASES
CASES += _MATH_CASES
CASES += _INDEXING_CASES
CASES += _QUANTIZE_CASES
CASES += _SAMPLING_CASES
CASES += _ATTENTION_CASES
