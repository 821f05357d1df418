"""Element-wise ops: activations, broadcasting arithmetic, casts.

FLOP counts charge one per arithmetic operation, comparison or transcendental function in
the op's defining formula, per output element.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.narrow import RoundMode, convert
from cnncompile.ops.registry import ANY_LAYOUT, OpLayouts, broadcast, declare, per_output, same_as_first

# Element-wise work is the same in any layout; the TVM backend lowers these in NHWC and NCHWc too.
LAYOUTS = OpLayouts(ANY_LAYOUT)

# -- erfc, for the exact Gelu --------------------------------------------------------------

_SERIES = tuple(  # 1 / (2n+1)!!
    1.0 / math.prod(range(2 * n + 1, 0, -2)) for n in range(30)
)
_FRACTION_DEPTH = 60


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function in float64, within ~1e-14 relative of math.erfc.

    NumPy has no erf and SciPy is not a dependency. Below |x| = 2 the series for erf has
    only positive terms, so nothing cancels, and 1 - erf >= erfc(2) loses under three
    digits; above, the continued fraction keeps full relative accuracy in the tail, where
    1 - erf would round to zero.
    """
    a = np.abs(np.asarray(x, dtype=np.float64))
    near = a < 2
    out = np.empty_like(a)
    out[near] = 1 - _erf_series(a[near])
    out[~near] = _erfc_fraction(a[~near])
    return np.where(np.asarray(x) < 0, 2 - out, out)


def _erf_series(a: np.ndarray) -> np.ndarray:
    """erf(a) = 2/sqrt(pi) exp(-a^2) sum_n (2a^2)^n a / (2n+1)!!; 30 terms reach double rounding for a < 2."""
    y, s = 2 * a * a, np.full_like(a, _SERIES[-1])
    for c in reversed(_SERIES[:-1]):
        s = s * y + c
    return (2 / math.sqrt(math.pi)) * a * np.exp(-a * a) * s


def _erfc_fraction(a: np.ndarray) -> np.ndarray:
    """erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))), evaluated bottom-up."""
    f = a.copy()
    for k in range(_FRACTION_DEPTH, 0, -1):
        f = a + (k / 2) / f
    return np.exp(-a * a) / (math.sqrt(math.pi) * f)


# -- activations ---------------------------------------------------------------------------


@declare("Relu", shape=same_as_first, flops=per_output(1), layouts=LAYOUTS)
def Relu(x):
    """max(x, 0)."""
    return np.maximum(x, 0).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class LeakyReluAttrs:
    alpha: float = 0.01


@declare("LeakyRelu", LeakyReluAttrs, shape=same_as_first, flops=per_output(2), layouts=LAYOUTS)
def LeakyRelu(x, *, alpha):
    """x for x >= 0, alpha * x below."""
    return np.where(x >= 0, x, alpha * x).astype(x.dtype, copy=False)


def _prelu_shape(x: TensorType, slope: TensorType, **_) -> TensorType:
    try:
        fits = np.broadcast_shapes(x.shape, slope.shape) == x.shape
    except ValueError:
        fits = False
    if not fits or slope.dtype != x.dtype:
        raise ShapeError(
            f"PRelu: slope {slope} must broadcast to X {x} without growing it and share its dtype; "
            "for per-channel slopes of an NCHW input give slope the shape [C, 1, 1]"
        )
    return x


@declare("PRelu", inputs=("X", "slope"), shape=_prelu_shape, flops=per_output(2))
def PRelu(x, slope):
    """x for x >= 0, slope * x below, slope broadcast to X."""
    return np.where(x >= 0, x, slope * x).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class EluAttrs:
    alpha: float = 1.0


def _expm1_negative(x: np.ndarray) -> np.ndarray:
    """exp(x) - 1 for x <= 0; clamping first keeps exp from overflowing in the unused branch."""
    return np.expm1(np.minimum(x, 0))


@declare("Elu", EluAttrs, shape=same_as_first, flops=per_output(3))
def Elu(x, *, alpha):
    """x for x > 0, alpha * (exp(x) - 1) below."""
    return np.where(x > 0, x, alpha * _expm1_negative(x)).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class SeluAttrs:
    alpha: float = 1.67326319217681884765625
    gamma: float = 1.05070102214813232421875


@declare("Selu", SeluAttrs, shape=same_as_first, flops=per_output(4))
def Selu(x, *, alpha, gamma):
    """gamma * x for x > 0, gamma * alpha * (exp(x) - 1) below."""
    return (gamma * np.where(x > 0, x, alpha * _expm1_negative(x))).astype(x.dtype, copy=False)


@declare("Sigmoid", shape=same_as_first, flops=per_output(3), layouts=LAYOUTS)
def Sigmoid(x):
    """1 / (1 + exp(-x))."""
    e = np.exp(-np.abs(x))  # never overflows; each branch divides by 1 + e in [1, 2]
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@declare("Tanh", shape=same_as_first, flops=per_output(1), layouts=LAYOUTS)
def Tanh(x):
    """tanh(x)."""
    return np.tanh(x)


@dataclass(frozen=True)
class HardSigmoidAttrs:
    alpha: float = 0.2
    beta: float = 0.5


@declare("HardSigmoid", HardSigmoidAttrs, shape=same_as_first, flops=per_output(4), layouts=LAYOUTS)
def HardSigmoid(x, *, alpha, beta):
    """max(0, min(1, alpha * x + beta))."""
    return np.clip(alpha * x + beta, 0, 1).astype(x.dtype, copy=False)


@declare("HardSwish", shape=same_as_first, flops=per_output(5), layouts=LAYOUTS)
def HardSwish(x):
    """x * max(0, min(1, x / 6 + 1/2))."""
    return (x * np.clip(x / 6 + 0.5, 0, 1)).astype(x.dtype, copy=False)


class GeluApproximation(enum.Enum):
    NONE = "none"
    TANH = "tanh"


@dataclass(frozen=True)
class GeluAttrs:
    approximate: GeluApproximation = GeluApproximation.NONE


@declare("Gelu", GeluAttrs, shape=same_as_first, flops=per_output(5), layouts=LAYOUTS)
def Gelu(x, *, approximate):
    """x * Phi(x), Phi the standard normal CDF, or its tanh approximation."""
    if approximate is GeluApproximation.TANH:
        y = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    else:
        # Phi(x) = erfc(-x / sqrt 2) / 2 stays accurate in the left tail, where 1 + erf cancels.
        y = 0.5 * x * erfc(-x / math.sqrt(2))
    return y.astype(x.dtype, copy=False)


@declare("Softplus", shape=same_as_first, flops=per_output(3))
def Softplus(x):
    """log(1 + exp(x))."""
    return np.logaddexp(0, x).astype(x.dtype, copy=False)  # max(x, 0) + log1p(exp(-|x|))


@declare("Softsign", shape=same_as_first, flops=per_output(3))
def Softsign(x):
    """x / (1 + |x|)."""
    return (x / (1 + np.abs(x))).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class ClipAttrs:
    min: float | None = None
    max: float | None = None


@declare("Clip", ClipAttrs, inputs=("input",), outputs=("output",), shape=same_as_first,
         flops=per_output(2), onnx_inputs_as_attrs={1: "min", 2: "max"}, layouts=LAYOUTS)
def Clip(x, **bounds):
    """min(max(x, min), max); a missing bound does not clip, and min > max gives max."""
    y = x if bounds["min"] is None else np.maximum(x, bounds["min"])
    y = y if bounds["max"] is None else np.minimum(y, bounds["max"])
    return y.astype(x.dtype, copy=False)


# -- broadcasting arithmetic ---------------------------------------------------------------


@declare("Add", inputs=("A", "B"), outputs=("C",), shape=broadcast, flops=per_output(1), layouts=LAYOUTS)
def Add(a, b):
    """A + B with multidirectional broadcasting."""
    return a + b


@declare("Sub", inputs=("A", "B"), outputs=("C",), shape=broadcast, flops=per_output(1), layouts=LAYOUTS)
def Sub(a, b):
    """A - B with multidirectional broadcasting."""
    return a - b


@declare("Mul", inputs=("A", "B"), outputs=("C",), shape=broadcast, flops=per_output(1), layouts=LAYOUTS)
def Mul(a, b):
    """A * B with multidirectional broadcasting."""
    return a * b


@declare("Div", inputs=("A", "B"), outputs=("C",), shape=broadcast, flops=per_output(1), layouts=LAYOUTS)
def Div(a, b):
    """A / B with multidirectional broadcasting; integer quotients truncate toward zero."""
    if not np.issubdtype(a.dtype, np.integer):
        return a / b
    # ONNX Runtime divides integers as C does; NumPy's // floors, one less when inexact and negative.
    floor = a // b
    return floor + ((floor * b != a) & ((a < 0) != (b < 0))).astype(floor.dtype)


def _sum_flops(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs) -> int:
    return (len(inputs) - 1) * outputs[0].numel


@declare("Sum", inputs=("data_0*",), outputs=("sum",), shape=broadcast, flops=_sum_flops, layouts=LAYOUTS)
def Sum(*arrays):
    """Element-wise sum of all inputs, broadcast together."""
    return functools.reduce(np.add, arrays)


# -- types and inference no-ops ------------------------------------------------------------


@dataclass(frozen=True)
class CastAttrs:
    """`saturate` governs float8 targets only, `round_mode` float8e8m0 only (ops/narrow.py)."""

    to: DType
    saturate: int = 1
    round_mode: RoundMode = RoundMode.UP


def _cast_shape(x: TensorType, *, to: DType, **_) -> TensorType:
    return TensorType(x.shape, to, x.layout)


@declare("Cast", CastAttrs, inputs=("input",), outputs=("output",), shape=_cast_shape,
         flops=per_output(0), layouts=LAYOUTS)
def Cast(x, *, to, saturate, round_mode):
    """X converted to element type `to`; floats become integers by truncation toward zero, and float8s
    saturate or overflow as `saturate` says."""
    return convert(x, to, saturate, round_mode)


@declare("Identity", inputs=("input",), outputs=("output",), shape=same_as_first, flops=per_output(0))
def Identity(x):
    """X unchanged."""
    return x


@dataclass(frozen=True)
class DropoutAttrs:
    seed: int | None = None
    ratio: float = 0.5
    training_mode: int = 0


def _inference_only(training_mode: int) -> None:
    if training_mode:
        raise UnsupportedError(
            "Dropout with training_mode=1 drops random elements, which inference does not "
            "reproduce; export the model in inference mode (torch: model.eval())"
        )


def _dropout_shape(data: TensorType, *, training_mode: int, **_) -> tuple[TensorType, TensorType]:
    _inference_only(training_mode)
    return data, TensorType(data.shape, DType.BOOL, data.layout)


@declare("Dropout", DropoutAttrs, inputs=("data",), outputs=("output", "mask"), shape=_dropout_shape,
         flops=per_output(0), onnx_inputs_as_attrs={1: "ratio", 2: "training_mode"})
def Dropout(data, *, training_mode, **_):
    """Inference-mode dropout: the output is the input and the mask is all True."""
    _inference_only(training_mode)
    return data, np.ones(data.shape, dtype=bool)
