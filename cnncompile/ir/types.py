"""Tensor types: shape, element type and data layout.

Shapes are static tuples of ints: dynamic dimensions are bound by the frontend before a
graph exists, so every later stage can plan memory and pick kernels from the type alone.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class DType(enum.Enum):
    FLOAT16 = "float16"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    INT8 = "int8"
    UINT8 = "uint8"
    INT32 = "int32"
    INT64 = "int64"
    BOOL = "bool"

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(self.value)

    @property
    def is_float(self) -> bool:
        return self in (DType.FLOAT16, DType.FLOAT32, DType.FLOAT64)

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @classmethod
    def of(cls, dtype: np.dtype | type | str) -> DType:
        return cls(np.dtype(dtype).name)


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


NCHW = Layout(LayoutKind.NCHW)
NHWC = Layout(LayoutKind.NHWC)


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: DType = DType.FLOAT32
    layout: Layout | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

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
