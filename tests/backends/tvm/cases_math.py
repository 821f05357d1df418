"""Lowering cases for element-wise math and logic (ops/math.py, ops/logic.py).

Inputs stay inside each function's domain (the harness fails on a NaN the reference
makes), except IsNaN/IsInf, whose bool outputs are what is compared. Integer cases draw
the corners the lowerings guard: Mod by 0 and -1, shifts by the type's width or more,
negative integer exponents, halves for Round.
"""

from __future__ import annotations

import numpy as np

from cases import Case, Draw, case, integers, normal, positive
from cnncompile.ops.logic import ShiftDirection

# A last axis of 32 fills whole vectors, so the CPU schedule vectorizes: LLVM lacks some vector intrinsics.
X = normal(2, 3, 4, 32, scale=2.0)


def uniform(low: float, high: float, *shape: int, dtype: str = "float32") -> Draw:
    return lambda rng: rng.uniform(low, high, shape).astype(dtype)


def halves(*shape: int) -> Draw:
    """Multiples of 0.5, so that Round meets ties (to even: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2)."""
    return lambda rng: (rng.integers(-12, 13, shape) / 2).astype(np.float32)


def nonzero(*shape: int) -> Draw:
    """Small integers of both signs but never 0, which a negative exponent would make inf."""
    return lambda rng: rng.choice([-3, -2, -1, 1, 2, 3], shape).astype(np.int64)


def bools(*shape: int) -> Draw:
    return lambda rng: rng.integers(0, 2, shape).astype(bool)


def with_specials(*shape: int) -> Draw:
    """Normal values with NaN, inf and -inf scattered among them."""

    def draw(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal(shape).astype(np.float32)
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, 9, replace=False)] = [np.nan, np.inf, -np.inf] * 3
        return x

    return draw


UNIT = uniform(-0.99, 0.99, 3, 4, 32)
FLOAT_UNARY = {"Exp": X, "Erf": X, "Floor": X, "Ceil": X, "Abs": X, "Neg": X, "Sign": halves(3, 32),
               "Sin": X, "Cos": X, "Tan": uniform(-1.5, 1.5, 4, 32), "Asin": UNIT, "Acos": UNIT, "Atan": X,
               "Sinh": X, "Cosh": X, "Asinh": X, "Acosh": uniform(1.0, 6.0, 3, 32), "Atanh": UNIT,
               "Log": positive(3, 32), "Sqrt": uniform(0.0, 9.0, 3, 32), "Reciprocal": positive(3, 32),
               "Round": halves(3, 32), "Celu": X, "Mish": X, "ThresholdedRelu": X, "Shrink": X}

CASES: list[Case] = [
    *(case(op, draw) for op, draw in FLOAT_UNARY.items()),
    case("Exp", normal(3, 7, scale=3.0, dtype="float64"), id="Exp-float64"),
    case("Erf", normal(3, 7, scale=2.0, dtype="float64"), id="Erf-float64"),
    case("Acosh", uniform(1.0, 50.0, 9, dtype="float64"), id="Acosh-float64"),
    case("Abs", integers(4, 5, low=-128, high=128, dtype="int8"), id="Abs-int8"),
    case("Abs", integers(4, 5, low=0, high=256, dtype="uint8"), id="Abs-uint8"),
    case("Neg", integers(4, 5, low=-99, high=99, dtype="int32"), id="Neg-int32"),
    case("Sign", integers(4, 5, low=-3, high=4, dtype="int64"), id="Sign-int64"),
    case("Sign", integers(4, 5, low=0, high=3, dtype="uint8"), id="Sign-uint8"),
    case("Celu", X, alpha=0.5, id="Celu-alpha"),
    case("Mish", normal(4, 16, scale=30.0), id="Mish-saturated"),
    case("Sinh", normal(4, 32, scale=20.0), id="Sinh-large"),
    case("Cosh", normal(4, 32, scale=20.0), id="Cosh-large"),
    case("Sinh", uniform(-1e-3, 1e-3, 4, 32, dtype="float64"), id="Sinh-small-float64"),
    case("ThresholdedRelu", X, alpha=-0.3, id="ThresholdedRelu-negative-alpha"),
    case("Shrink", X, bias=0.2, lambd=0.7, id="Shrink-bias"),
    case("Shrink", integers(4, 6, low=-9, high=9, dtype="int32"), bias=1.5, lambd=2.0, id="Shrink-int"),
    case("IsNaN", with_specials(4, 6)),
    case("IsInf", with_specials(4, 6)),
    case("IsInf", with_specials(4, 6), detect_positive=0, id="IsInf-negative"),
    case("IsInf", with_specials(4, 6), detect_negative=0, id="IsInf-positive"),
    case("IsInf", with_specials(4, 6), detect_negative=0, detect_positive=0, id="IsInf-neither"),
    # broadcasting arithmetic
    case("Pow", positive(2, 3, 4), normal(4, scale=2.0)),
    case("Pow", normal(3, 5, scale=2.0), integers(5, low=-3, high=5), id="Pow-float-int-exponent"),
    case("Pow", nonzero(3, 6), integers(6, low=-2, high=6), id="Pow-int64"),
    case("Pow", integers(4, 3, low=0, high=6, dtype="int32"), uniform(0.0, 3.0, 1, 3), id="Pow-int32-float-exponent"),
    case("Mod", integers(4, 6, low=-20, high=20, dtype="int32"), integers(6, low=-5, high=6, dtype="int32")),
    case("Mod", integers(4, 6, low=-20, high=20), integers(4, 1, low=-5, high=6), fmod=1, id="Mod-fmod-int64"),
    case("Mod", integers(5, 7, low=-128, high=128, dtype="int8"), integers(7, low=-2, high=2, dtype="int8"),
         id="Mod-int8-by-0-and-minus-1"),
    case("Mod", integers(5, 7, low=0, high=256, dtype="uint8"), integers(7, low=0, high=9, dtype="uint8"),
         id="Mod-uint8"),
    case("Mod", normal(3, 5, scale=9.0), positive(5), fmod=1, id="Mod-fmod-float"),
    case("Max", X, normal(4, 32), normal(3, 1, 1)),
    case("Max", X, id="Max-one-input"),
    case("Max", integers(3, 4, low=-9, high=9, dtype="int32"), integers(4, low=-9, high=9, dtype="int32"),
         id="Max-int32"),
    case("Min", X, normal(1, 3, 4, 1), normal(32)),
    case("Min", integers(3, 4, low=0, high=200, dtype="uint8"), integers(3, 4, low=0, high=200, dtype="uint8"),
         id="Min-uint8"),
    case("Mean", X, normal(4, 32), normal(3, 1, 1)),
    case("Mean", normal(4, 5, dtype="float64"), id="Mean-one-input-float64"),
    # comparisons and selection
    case("Equal", integers(3, 4, low=-2, high=2, dtype="int32"), integers(4, low=-2, high=2, dtype="int32")),
    case("Equal", bools(3, 4), bools(1, 4), id="Equal-bool"),
    case("Less", X, normal(3, 1, 1)),
    case("Greater", normal(4, 5), normal(5)),
    case("LessOrEqual", integers(5, 6, low=-2, high=2), integers(5, 1, low=-2, high=2), id="LessOrEqual-ties"),
    case("GreaterOrEqual", integers(5, 6, low=0, high=3, dtype="uint8"), integers(6, low=0, high=3, dtype="uint8"),
         id="GreaterOrEqual-ties"),
    case("Where", bools(3, 1, 32), X, normal(4, 1)),
    case("Where", bools(4, 5), integers(4, 5, low=-9, high=9), integers(1, low=-9, high=9), id="Where-int64"),
    case("And", bools(3, 4, 5), bools(4, 5)),
    case("Or", bools(3, 4, 5), bools(3, 1, 5)),
    case("Xor", bools(3, 4, 5), bools(5)),
    case("Not", bools(3, 4, 5)),
    case("BitwiseAnd", integers(3, 4, low=-99, high=99, dtype="int32"), integers(4, low=-99, high=99, dtype="int32")),
    case("BitwiseOr", integers(3, 4, low=0, high=256, dtype="uint8"), integers(3, 1, low=0, high=256, dtype="uint8")),
    case("BitwiseXor", integers(3, 4, low=-2**40, high=2**40), integers(3, 4, low=-2**40, high=2**40)),
    case("BitwiseNot", integers(3, 4, low=-128, high=128, dtype="int8")),
    case("BitwiseNot", integers(3, 4, low=0, high=256, dtype="uint8"), id="BitwiseNot-uint8"),
    case("BitShift", integers(4, 6, low=0, high=256, dtype="uint8"), integers(6, low=0, high=11, dtype="uint8"),
         direction=ShiftDirection.LEFT),
    case("BitShift", integers(4, 6, low=0, high=256, dtype="uint8"), integers(4, 1, low=0, high=11, dtype="uint8"),
         direction=ShiftDirection.RIGHT, id="BitShift-right"),
]
