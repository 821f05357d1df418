"""Element-wise math: ONNX's unary functions, Pow and Mod, variadic Max/Min/Mean, the
activations built from them (Celu, Mish, ThresholdedRelu, Shrink), and IsNaN/IsInf.

The ops keep to NCHW (OpLayouts' default): which ops run in NHWC and NCHWc is a contract
between helpers (tests/ir/test_layout_types.py), though these lowerings would work there.
Each shape rule admits the element types ONNX's schema does (where DType has them), so a
kernel never meets a type whose meaning the spec leaves open: Exp of an integer, Mod of
floats without fmod. Domain errors (Log of a negative, Reciprocal of zero) have IEEE
answers (NaN, inf), which the kernels return without NumPy's warnings. FLOP counts charge
one per arithmetic operation, comparison or transcendental function, per output element.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.registry import OpDef, ShapeRule, broadcast, declare, per_output, same_as_first

FLOATS = frozenset(d for d in DType if d.is_float)
NUMBERS = frozenset(d for d in DType if not d.is_narrow) - {DType.BOOL}  # nothing computes in a narrow type
SIGNED = NUMBERS - {DType.UINT8}
XY = ("X", "Y")

def ieee() -> np.errstate:
    """NumPy quiet about the IEEE answers (NaN, inf) that ONNX defines these ops to give."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def typed(allowed: frozenset[DType], rule: ShapeRule = same_as_first) -> ShapeRule:
    """`rule`, after checking that every operand's element type is one the op's ONNX schema allows."""

    def shape(*inputs: TensorType, **attrs) -> TensorType | Sequence[TensorType]:
        for t in inputs:
            if t.dtype not in allowed:
                names = ", ".join(d.value for d in DType if d in allowed)
                raise ShapeError(f"takes {names} tensors, got {t.dtype.value}")
        return rule(*inputs, **attrs)

    return shape


def _unary(name: str, allowed: frozenset[DType], function: Callable[[np.ndarray], np.ndarray], doc: str,
           operands: tuple[str, str] = ("input", "output")) -> OpDef:
    """Declare a one-input, one-output op whose kernel is a NumPy function; `operands` are ONNX's names."""

    def kernel(x):
        with ieee():
            return np.asarray(function(x)).astype(x.dtype, copy=False)

    kernel.__doc__ = doc
    return declare(name, inputs=operands[:1], outputs=operands[1:], shape=typed(allowed),
                   flops=per_output(1))(kernel)


# math.erf is libm's, correct to the last bit; NumPy has none and SciPy is not a dependency.
_erf = np.frompyfunc(math.erf, 1, 1)

Exp = _unary("Exp", FLOATS, np.exp, "e to the power X.")
Log = _unary("Log", FLOATS, np.log, "Natural logarithm of X (NaN below 0, -inf at 0).")
Sqrt = _unary("Sqrt", FLOATS, np.sqrt, "Square root of X (NaN below 0).", XY)
Reciprocal = _unary("Reciprocal", FLOATS, np.reciprocal, "1 / X.", XY)
Floor = _unary("Floor", FLOATS, np.floor, "The largest integer not above X.", XY)
Ceil = _unary("Ceil", FLOATS, np.ceil, "The smallest integer not below X.", XY)
Round = _unary("Round", FLOATS, np.round, "X rounded to the nearest integer, halves to the even one.", XY)
Erf = _unary("Erf", FLOATS, lambda x: _erf(x).astype(np.float64),
             "The error function 2/sqrt(pi) * integral of exp(-t^2) from 0 to X.")
Abs = _unary("Abs", NUMBERS, np.abs, "|X|.", XY)
Neg = _unary("Neg", SIGNED, np.negative, "-X.", XY)
Sign = _unary("Sign", NUMBERS, np.sign, "1 for positive X, -1 for negative, 0 for zero.")
Sin = _unary("Sin", FLOATS, np.sin, "Sine of X (radians).")
Cos = _unary("Cos", FLOATS, np.cos, "Cosine of X (radians).")
Tan = _unary("Tan", FLOATS, np.tan, "Tangent of X (radians).")
Asin = _unary("Asin", FLOATS, np.arcsin, "Arcsine of X, in [-pi/2, pi/2].")
Acos = _unary("Acos", FLOATS, np.arccos, "Arccosine of X, in [0, pi].")
Atan = _unary("Atan", FLOATS, np.arctan, "Arctangent of X, in (-pi/2, pi/2).")
Sinh = _unary("Sinh", FLOATS, np.sinh, "Hyperbolic sine of X.")
Cosh = _unary("Cosh", FLOATS, np.cosh, "Hyperbolic cosine of X.")
Asinh = _unary("Asinh", FLOATS, np.arcsinh, "Inverse hyperbolic sine of X.")
Acosh = _unary("Acosh", FLOATS, np.arccosh, "Inverse hyperbolic cosine of X (NaN below 1).")
Atanh = _unary("Atanh", FLOATS, np.arctanh, "Inverse hyperbolic tangent of X (NaN outside [-1, 1]).")


# -- activations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CeluAttrs:
    alpha: float = 1.0


@declare("Celu", CeluAttrs, shape=typed(frozenset({DType.FLOAT32})), flops=per_output(4))
def Celu(x, *, alpha):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); float32 only, as ONNX's schema says."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) / alpha)).astype(x.dtype, copy=False)


@declare("Mish", shape=typed(FLOATS), flops=per_output(4))
def Mish(x):
    """x * tanh(softplus(x)), softplus(x) = log(1 + exp(x))."""
    return (x * np.tanh(np.logaddexp(0, x))).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class ThresholdedReluAttrs:
    alpha: float = 1.0


@declare("ThresholdedRelu", ThresholdedReluAttrs, shape=typed(FLOATS), flops=per_output(1))
def ThresholdedRelu(x, *, alpha):
    """x for x > alpha, 0 elsewhere."""
    return np.where(x > alpha, x, 0).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class ShrinkAttrs:
    bias: float = 0.0
    lambd: float = 0.5


@declare("Shrink", ShrinkAttrs, inputs=("input",), outputs=("output",), shape=typed(NUMBERS),
         flops=per_output(3))
def Shrink(x, *, bias, lambd):
    """x + bias for x < -lambd, x - bias for x > lambd, 0 between; computed in float, then cast to x's type."""
    y = np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0.0))
    return y.astype(x.dtype)


# -- broadcasting arithmetic ---------------------------------------------------------------

POW_BASES = frozenset({DType.INT32, DType.INT64}) | FLOATS


def _pow_shape(x: TensorType, y: TensorType, **_) -> TensorType:
    """Z has X's type; the exponent may be of any numeric type, so only shapes must agree."""
    typed(POW_BASES)(x)
    typed(NUMBERS)(y)
    return broadcast(x, TensorType(y.shape, x.dtype, y.layout))


@declare("Pow", inputs=("X", "Y"), outputs=("Z",), shape=_pow_shape, flops=per_output(1))
def Pow(x, y):
    """X to the power Y, broadcast, in X's type; an integer base is raised in float64 and truncated, as
    onnxruntime does (so 2 ** -1 is 0)."""
    with ieee():
        if np.issubdtype(x.dtype, np.integer):
            return np.power(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)
        return np.power(x, y.astype(x.dtype, copy=False)).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class ModAttrs:
    fmod: int = 0


def _mod_shape(a: TensorType, b: TensorType, *, fmod: int) -> TensorType:
    if fmod not in (0, 1):
        raise ShapeError(f"fmod must be 0 or 1, got {fmod}")
    if fmod == 0 and a.dtype.is_float:
        raise ShapeError(f"the remainder of {a.dtype.value} tensors needs fmod=1 (C's fmod, the sign of A), "
                         "as ONNX requires for floating types")
    return typed(NUMBERS, broadcast)(a, b)


@declare("Mod", ModAttrs, inputs=("A", "B"), outputs=("C",), shape=_mod_shape, flops=per_output(1))
def Mod(a, b, *, fmod):
    """A mod B, broadcast: with fmod=1 the sign of A (C's fmod), else of B (Python's %); mod 0 is 0 for
    integers, NaN for floats."""
    with ieee():
        return (np.fmod(a, b) if fmod else np.mod(a, b)).astype(a.dtype, copy=False)


def _pairwise_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    return (len(inputs) - 1) * outputs[0].numel


@declare("Max", inputs=("data_0*",), outputs=("max",), shape=typed(NUMBERS, broadcast), flops=_pairwise_flops)
def Max(*arrays):
    """Element-wise maximum of all inputs, broadcast together; NaN wins."""
    return functools.reduce(np.maximum, arrays)


@declare("Min", inputs=("data_0*",), outputs=("min",), shape=typed(NUMBERS, broadcast), flops=_pairwise_flops)
def Min(*arrays):
    """Element-wise minimum of all inputs, broadcast together; NaN wins."""
    return functools.reduce(np.minimum, arrays)


def _mean_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    return len(inputs) * outputs[0].numel


@declare("Mean", inputs=("data_0*",), outputs=("mean",), shape=typed(FLOATS, broadcast), flops=_mean_flops)
def Mean(*arrays):
    """Element-wise mean of all inputs, broadcast together."""
    return (functools.reduce(np.add, arrays) / len(arrays)).astype(arrays[0].dtype, copy=False)


# -- classification ------------------------------------------------------------------------


def _flags(x: TensorType, **_) -> TensorType:
    typed(FLOATS)(x)
    return TensorType(x.shape, DType.BOOL, x.layout)


@declare("IsNaN", shape=_flags, flops=per_output(1))
def IsNaN(x):
    """True where X is NaN."""
    return np.isnan(x)


@dataclass(frozen=True)
class IsInfAttrs:
    detect_negative: int = 1
    detect_positive: int = 1


@declare("IsInf", IsInfAttrs, shape=_flags, flops=per_output(1))
def IsInf(x, *, detect_negative, detect_positive):
    """True where X is an infinity of a sign asked for."""
    return (np.isneginf(x) & bool(detect_negative)) | (np.isposinf(x) & bool(detect_positive))
