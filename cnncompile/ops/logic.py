"""Element-wise logic: comparisons, Where, boolean And/Or/Xor/Not, and the integer bitwise ops.

Comparisons broadcast two operands of one type to a bool tensor; Where picks between two
of one type by a bool condition, all three broadcast together. BitShift takes unsigned
integers only (ONNX's schema), and shifting by the type's width or more gives 0, as
NumPy does, where C and LLVM leave it undefined.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.math import NUMBERS, typed
from cnncompile.ops.registry import broadcast, declare, per_output

BOOLS = frozenset({DType.BOOL})
INTEGERS = frozenset(d for d in NUMBERS if not d.is_float)
UNSIGNED = frozenset({DType.UINT8})


def _comparison(allowed: frozenset[DType]):
    def shape(a: TensorType, b: TensorType, **_) -> TensorType:
        c = typed(allowed, broadcast)(a, b)
        return TensorType(c.shape, DType.BOOL, c.layout)

    return shape


def _compare(name: str, allowed: frozenset[DType], function, doc: str):
    def kernel(a, b):
        return function(a, b)

    kernel.__doc__ = doc
    return declare(name, inputs=("A", "B"), outputs=("C",), shape=_comparison(allowed),
                   flops=per_output(1))(kernel)


Equal = _compare("Equal", NUMBERS | BOOLS, np.equal, "A == B, broadcast, as a bool tensor.")
Less = _compare("Less", NUMBERS, np.less, "A < B, broadcast, as a bool tensor.")
Greater = _compare("Greater", NUMBERS, np.greater, "A > B, broadcast, as a bool tensor.")
LessOrEqual = _compare("LessOrEqual", NUMBERS, np.less_equal, "A <= B, broadcast, as a bool tensor.")
GreaterOrEqual = _compare("GreaterOrEqual", NUMBERS, np.greater_equal, "A >= B, broadcast, as a bool tensor.")


def _where_shape(condition: TensorType, x: TensorType, y: TensorType, **_) -> TensorType:
    typed(BOOLS)(condition)
    out = broadcast(x, y)
    return broadcast(TensorType(condition.shape, out.dtype), out)


@declare("Where", inputs=("condition", "X", "Y"), outputs=("output",), shape=_where_shape, flops=per_output(1))
def Where(condition, x, y):
    """X where condition holds, Y elsewhere, all three broadcast together."""
    return np.where(condition, x, y)


def _binary(name: str, allowed: frozenset[DType], function, doc: str):
    def kernel(a, b):
        return function(a, b)

    kernel.__doc__ = doc
    return declare(name, inputs=("A", "B"), outputs=("C",), shape=typed(allowed, broadcast),
                   flops=per_output(1))(kernel)


def _negate(name: str, allowed: frozenset[DType], doc: str):
    def kernel(x):
        return np.invert(x)

    kernel.__doc__ = doc
    return declare(name, shape=typed(allowed), flops=per_output(1))(kernel)


And = _binary("And", BOOLS, np.logical_and, "A and B, broadcast.")
Or = _binary("Or", BOOLS, np.logical_or, "A or B, broadcast.")
Xor = _binary("Xor", BOOLS, np.logical_xor, "A xor B, broadcast.")
Not = _negate("Not", BOOLS, "not X.")
BitwiseAnd = _binary("BitwiseAnd", INTEGERS, np.bitwise_and, "A & B, bit by bit, broadcast.")
BitwiseOr = _binary("BitwiseOr", INTEGERS, np.bitwise_or, "A | B, bit by bit, broadcast.")
BitwiseXor = _binary("BitwiseXor", INTEGERS, np.bitwise_xor, "A ^ B, bit by bit, broadcast.")
BitwiseNot = _negate("BitwiseNot", INTEGERS, "~X, every bit flipped.")


class ShiftDirection(enum.Enum):
    LEFT = "LEFT"
    RIGHT = "RIGHT"


@dataclass(frozen=True)
class BitShiftAttrs:
    direction: ShiftDirection


@declare("BitShift", BitShiftAttrs, inputs=("X", "Y"), outputs=("Z",), shape=typed(UNSIGNED, broadcast),
         flops=per_output(1))
def BitShift(x, y, *, direction):
    """X shifted by Y bits, broadcast, toward the high bits (LEFT) or the low ones (RIGHT); bits shifted out
    are lost."""
    shift = np.left_shift if direction is ShiftDirection.LEFT else np.right_shift
    return shift(x, y).astype(x.dtype, copy=False)
