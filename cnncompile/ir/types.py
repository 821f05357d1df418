"""Tensor types: shape, element type and data layout.

Shapes are static tuples of ints: dynamic dimensions are bound by the frontend before a
graph exists, so every later stage can plan memory and pick kernels from the type alone.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import ml_dtypes  # also registers bfloat16 with NumPy, so np.dtype("bfloat16") resolves
import numpy as np


class DType(enum.Enum):
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    BOOL = "bool"
    # The narrow types (ml_dtypes' names): ONNX's float8s, float4 and sub-byte integers.
    FLOAT8E4M3FN = "float8_e4m3fn"
    FLOAT8E4M3FNUZ = "float8_e4m3fnuz"
    FLOAT8E5M2 = "float8_e5m2"
    FLOAT8E5M2FNUZ = "float8_e5m2fnuz"
    FLOAT8E8M0 = "float8_e8m0fnu"
    FLOAT4E2M1 = "float4_e2m1fn"
    INT4 = "int4"
    UINT4 = "uint4"
    INT2 = "int2"
    UINT2 = "uint2"

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(self.value)

    @property
    def is_float(self) -> bool:
        """A float that ops compute in, float16 to float64. The float8s and float4 hold floats too (their
        arrays are `is_floating`), but only Cast, CastLike and the (de)quantizers take them (`is_narrow`),
        so every shape rule and pass that asks this for "may do float arithmetic" rightly leaves them out."""
        return self in (DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32, DType.FLOAT64)

    @property
    def is_narrow(self) -> bool:
        """A float8, float4 or sub-byte integer: a storage type that values are cast to and from and
        (de)quantized with, never one an op computes in (no arithmetic op's shape rule admits it, and the
        reference holds it in its own type, one element a byte, where it widens the other floats)."""
        return self in NARROW_FLOATS or self in NARROW_INTEGERS

    @property
    def bits(self) -> int:
        """Bits an element takes where ONNX stores it: int4, uint4 and float4 pack two to a byte, int2 and
        uint2 four (NumPy's arrays hold one a byte, `itemsize`)."""
        if self.is_narrow:
            return (ml_dtypes.finfo if self in NARROW_FLOATS else ml_dtypes.iinfo)(self.numpy).bits
        return 8 * self.itemsize

    @property
    def is_reduced(self) -> bool:
        """A 16-bit float: stored in half the bytes, computed with float32 accumulation (the narrow floats
        are not: nothing computes in them)."""
        return self in (DType.FLOAT16, DType.BFLOAT16)

    @property
    def accumulator(self) -> DType:
        """What sums of products of this type accumulate in: float32 for the 16-bit floats, which round
        too coarsely to accumulate in; every other type itself (the narrow types are only ever cast or
        dequantized, so no sum of them is accumulated)."""
        return DType.FLOAT32 if self.is_reduced else self

    def takes_parameter(self, parameter: DType) -> bool:
        """Whether a per-channel parameter (bias, scale, shift) of a computation in this type may be stored in
        `parameter`: its own type, or the accumulator its epilogue computes in (a bfloat16 conv keeps its
        bias in float32, as rounding it would add error for no saving)."""
        return parameter in (self, self.accumulator)

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @classmethod
    def of(cls, dtype: np.dtype | type | str) -> DType:
        return cls(np.dtype(dtype).name)


NARROW_FLOATS = frozenset({DType.FLOAT8E4M3FN, DType.FLOAT8E4M3FNUZ, DType.FLOAT8E5M2, DType.FLOAT8E5M2FNUZ,
                           DType.FLOAT8E8M0, DType.FLOAT4E2M1})
NARROW_INTEGERS = frozenset({DType.INT4, DType.UINT4, DType.INT2, DType.UINT2})
_ML_FLOATS = frozenset(np.dtype(d.value) for d in (DType.BFLOAT16, *NARROW_FLOATS))


def is_floating(dtype: np.dtype) -> bool:
    """Whether arrays of `dtype` hold floats, bfloat16 and the float8s and float4 included (NumPy does not
    count ml_dtypes' types as np.floating)."""
    return np.issubdtype(dtype, np.floating) or np.dtype(dtype) in _ML_FLOATS


class LayoutKind(enum.Enum):
    NCHW = "NCHW"
    NHWC = "NHWC"
    NCHWC = "NCHWc"


@dataclass(frozen=True)
class Layout:
    """How a feature map's dimensions are ordered in memory.

    `NCHWc` carries its channel block, e.g. NCHW16c: channels split into C/16 outer and 16
    inner, the inner block being the vector lane.
    """

    kind: LayoutKind
    block: int | None = None

    def __post_init__(self) -> None:
        if (self.kind is LayoutKind.NCHWC) != (self.block is not None):
            raise ValueError("only the blocked layout NCHWc carries a block size")

    def __str__(self) -> str:
        return f"NCHW{self.block}c" if self.kind is LayoutKind.NCHWC else self.kind.value

    def holds(self, shape: tuple[int, ...]) -> bool:
        """Whether a tensor of this logical (N, C, H, W) shape can be stored in this layout."""
        if self.kind is LayoutKind.NCHW:
            return True
        return len(shape) == 4 and (self.kind is LayoutKind.NHWC or shape[1] % self.block == 0)

    def physical_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape in memory of a logical (N, C, H, W) tensor: (N, H, W, C) or (N, C/c, H, W, c)."""
        if self.kind is LayoutKind.NCHW:
            return tuple(shape)
        n, c, h, w = shape
        if self.kind is LayoutKind.NHWC:
            return (n, h, w, c)
        return (n, c // self.block, h, w, self.block)

    def to_physical(self, array: np.ndarray) -> np.ndarray:
        """A logical NCHW array stored in this layout."""
        if self.kind is LayoutKind.NCHW:
            return array
        if self.kind is LayoutKind.NHWC:
            return np.ascontiguousarray(array.transpose(0, 2, 3, 1))
        n, c, h, w = array.shape
        return np.ascontiguousarray(array.reshape(n, c // self.block, self.block, h, w).transpose(0, 1, 3, 4, 2))

    def to_logical(self, array: np.ndarray) -> np.ndarray:
        """The logical NCHW array of one stored in this layout."""
        if self.kind is LayoutKind.NCHW:
            return array
        if self.kind is LayoutKind.NHWC:
            return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
        n, outer, h, w, block = array.shape
        return np.ascontiguousarray(array.transpose(0, 1, 4, 2, 3).reshape(n, outer * block, h, w))


NCHW = Layout(LayoutKind.NCHW)
NHWC = Layout(LayoutKind.NHWC)


def nchwc(block: int) -> Layout:
    return Layout(LayoutKind.NCHWC, block)


def canonical_layout(layout: Layout | None) -> Layout | None:
    """The IR's one spelling of a layout: None for the logical order, NCHW however written."""
    return None if layout is None or layout.kind is LayoutKind.NCHW else layout


# A block narrower than this leaves a CPU kernel's vectors mostly empty.
MIN_BLOCK = 4


def channel_block(channels: tuple[int, ...], lanes: int) -> int | None:
    """The NCHWc block for feature maps of these channel counts on a `lanes`-wide SIMD target: the
    largest of lanes, lanes/2, ... >= MIN_BLOCK dividing every count; None if none does."""
    block = lanes
    while block >= MIN_BLOCK:
        if all(c % block == 0 for c in channels):
            return block
        block //= 2
    return None


@dataclass(frozen=True)
class TensorType:
    """A tensor's logical shape (channels first, as ONNX has it), element type and storage layout.

    The shape is always the logical one, whatever the layout: shape rules, the reference
    and every pass reason about logical tensors, and only a backend stores a value in its
    layout (`Layout.physical_shape`). None means the logical order itself, and is its only
    spelling: a type given NCHW holds None, so types compare equal however it was written.
    """

    shape: tuple[int, ...]
    dtype: DType = DType.FLOAT32
    layout: Layout | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "layout", canonical_layout(self.layout))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(tuple(shape), self.dtype, self.layout)

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        suffix = f" {self.layout}" if self.layout else ""
        return f"{self.dtype.value}[{dims}]{suffix}"

    @classmethod
    def of(cls, array: np.ndarray) -> TensorType:
        return cls(tuple(array.shape), DType.of(array.dtype))
