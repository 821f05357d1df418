"""Activations as scalar TIR expressions, shared by the element-wise ops and fused epilogues.

Each entry transcribes its op's reference kernel (ops/elementwise.py) on one element, so
an epilogue computes exactly what the op it absorbed computed. Formulas that would
overflow in one branch (exp of a large argument) use the same guarded forms the
reference uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tvm import tirx

from cnncompile.backends.tvm.lowering.common import const, dtype_of
from cnncompile.ops import elementwise as ew
from cnncompile.ops.fused import ACTIVATION_OPS, Activation
from cnncompile.ops.registry import OpDef

Scalar = Callable[[tirx.Expr, Any], tirx.Expr]


def _c(value: float, x: tirx.Expr) -> tirx.Expr:
    """`value` in x's dtype; integer tensors truncate it, as the reference's final cast does (min/max
    against a truncated bound give the same integers as against the float bound, then truncated)."""
    return const(value, dtype_of(x))


def _expm1_negative(x: tirx.Expr) -> tirx.Expr:
    return tirx.exp(tirx.min(x, _c(0, x))) - _c(1, x)


def _sigmoid(x: tirx.Expr, _: Any) -> tirx.Expr:
    e = tirx.exp(-tirx.abs(x))
    one = _c(1, x)
    return tirx.Select(x >= _c(0, x), one / (one + e), e / (one + e))


def _clip(x: tirx.Expr, attrs: ew.ClipAttrs) -> tirx.Expr:
    y = x if attrs.min is None else tirx.max(x, _c(attrs.min, x))
    return y if attrs.max is None else tirx.min(y, _c(attrs.max, x))


def _gelu(x: tirx.Expr, attrs: ew.GeluAttrs) -> tirx.Expr:
    half = _c(0.5, x)
    if attrs.approximate is ew.GeluApproximation.TANH:
        inner = _c(math.sqrt(2 / math.pi), x) * (x + _c(0.044715, x) * x * x * x)
        return half * x * (_c(1, x) + tirx.tanh(inner))
    return half * x * (_c(1, x) + tirx.erf(x * _c(1 / math.sqrt(2), x)))


def _hard_sigmoid(x: tirx.Expr, attrs: ew.HardSigmoidAttrs) -> tirx.Expr:
    return tirx.min(tirx.max(_c(attrs.alpha, x) * x + _c(attrs.beta, x), _c(0, x)), _c(1, x))


UNARY: dict[OpDef, Scalar] = {
    ew.Relu: lambda x, _: tirx.max(x, _c(0, x)),
    ew.LeakyRelu: lambda x, a: tirx.Select(x >= _c(0, x), x, _c(a.alpha, x) * x),
    ew.Elu: lambda x, a: tirx.Select(x > _c(0, x), x, _c(a.alpha, x) * _expm1_negative(x)),
    ew.Selu: lambda x, a: _c(a.gamma, x) * tirx.Select(x > _c(0, x), x, _c(a.alpha, x) * _expm1_negative(x)),
    ew.Sigmoid: _sigmoid,
    ew.Tanh: lambda x, _: tirx.tanh(x),
    ew.HardSigmoid: _hard_sigmoid,
    ew.HardSwish: lambda x, _: x * tirx.min(tirx.max(x / _c(6, x) + _c(0.5, x), _c(0, x)), _c(1, x)),
    ew.Gelu: _gelu,
    ew.Softplus: lambda x, _: tirx.max(x, _c(0, x)) + tirx.log1p(tirx.exp(-tirx.abs(x))),
    ew.Softsign: lambda x, _: x / (_c(1, x) + tirx.abs(x)),
    ew.Clip: _clip,
}


def activation(x: tirx.Expr, kind: Activation, attrs: Any) -> tirx.Expr:
    """A fused epilogue's activation on one element; SiLU is x * Sigmoid(x)."""
    if kind is Activation.NONE:
        return x
    y = UNARY[ACTIVATION_OPS[kind]](x, attrs)
    return x * y if kind is Activation.SILU else y
