"""Element-wise math (ops/math.py) as scalar TIR.

Each entry transcribes its op's reference kernel on one element. Where a TVM intrinsic
lacks the element type, the kernel computes in a type that has it and casts back, never
approximating silently:
  - float16 computes in float32 (LLVM has no half-precision asin, erf, log1p, ...; CUDA's
    half functions round the same way once the float32 result is rounded), which is what
    the reference computes a float16 graph in;
  - an integer Pow raises in float64 and truncates, as the reference and onnxruntime do;
  - Shrink of integers compares and shifts in float64, as the reference does.
Max and Min let NaN win explicitly: LLVM's select-based max drops a NaN first operand
and CUDA's fmaxf drops either. An integer Mod divides by 1 where the divisor is 0 or -1:
the result (0) is the reference's, and x86 traps on both (x / 0, INT_MIN / -1).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from tvm import te, tirx

from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, Lowering
from cnncompile.backends.tvm.lowering.common import const, dtype_of, elementwise, is_float
from cnncompile.backends.tvm.lowering.layouts import physical_shape
from cnncompile.ops import math as m
from cnncompile.ops.registry import OpDef

Scalar = Callable[[tirx.Expr, Any], tirx.Expr]


def _c(value: float, x: tirx.Expr) -> tirx.Expr:
    return const(value, dtype_of(x))


def _is_float(x: tirx.Expr) -> bool:
    return is_float(dtype_of(x))


def _wide(dtype: str) -> str:
    """The type a float16 or integer operand computes in when an intrinsic lacks its own."""
    return "float32" if dtype in ("float16", "bfloat16") else dtype if is_float(dtype) else "float64"


def _in_float32(scalar: Scalar) -> Scalar:
    """`scalar` on a float16 element computed in float32 and rounded back; other types as they are."""

    def wide(x: tirx.Expr, attrs: Any) -> tirx.Expr:
        if dtype_of(x) != "float16":
            return scalar(x, attrs)
        return scalar(x.astype("float32"), attrs).astype("float16")

    return wide


def _intrinsic(function: Callable[[tirx.Expr], tirx.Expr]) -> Scalar:
    return _in_float32(lambda x, _: function(x))


def _sign(x: tirx.Expr, _: Any) -> tirx.Expr:
    """x itself where it is 0 or NaN."""
    one = _c(1, x)
    below = x if dtype_of(x).startswith("uint") else tirx.Select(x < _c(0, x), _c(-1, x), x)
    return tirx.Select(x > _c(0, x), one, below)


def _half_exps(x: tirx.Expr) -> tuple[tirx.Expr, tirx.Expr]:
    """exp(|x|) / 2 and exp(-|x|) / 2, finite wherever sinh and cosh are (exp(|x|) alone overflows first)."""
    ln2 = _c(math.log(2), x)
    return tirx.exp(tirx.abs(x) - ln2), tirx.exp(-tirx.abs(x) - ln2)


# sinh(x) = x * sum_k x^2k / (2k+1)!: below |x| = 1 nine terms reach double rounding, and nothing cancels.
_SINH_SERIES = tuple(1 / math.factorial(2 * k + 1) for k in range(9))


def _sinh(x: tirx.Expr, _: Any) -> tirx.Expr:
    """The series below |x| = 1, where exp(x)/2 - exp(-x)/2 cancels; that difference above (LLVM lowers
    no vector sinh)."""
    x2 = x * x
    series = functools.reduce(lambda acc, c: acc * x2 + _c(c, x), reversed(_SINH_SERIES[:-1]),
                              _c(_SINH_SERIES[-1], x))
    up, down = _half_exps(x)
    far = tirx.Select(x < _c(0, x), down - up, up - down)
    return tirx.Select(tirx.abs(x) < _c(1, x), x * series, far)


def _cosh(x: tirx.Expr, _: Any) -> tirx.Expr:
    """exp(|x|)/2 + exp(-|x|)/2, which never cancels (LLVM lowers no vector cosh)."""
    up, down = _half_exps(x)
    return up + down


def _celu(x: tirx.Expr, attrs: m.CeluAttrs) -> tirx.Expr:
    alpha = _c(attrs.alpha, x)
    return tirx.Select(x > _c(0, x), x, alpha * (tirx.exp(tirx.min(x, _c(0, x)) / alpha) - _c(1, x)))


def _mish(x: tirx.Expr, _: Any) -> tirx.Expr:
    softplus = tirx.max(x, _c(0, x)) + tirx.log1p(tirx.exp(-tirx.abs(x)))
    return x * tirx.tanh(softplus)


def _shrink(x: tirx.Expr, attrs: m.ShrinkAttrs) -> tirx.Expr:
    v = x if _is_float(x) else x.astype("float64")
    lambd = _c(attrs.lambd, v)
    y = tirx.Select(v < -lambd, v + _c(attrs.bias, v), tirx.Select(v > lambd, v - _c(attrs.bias, v), _c(0, v)))
    return y if _is_float(x) else y.astype(dtype_of(x))


def _is_inf(x: tirx.Expr, attrs: m.IsInfAttrs) -> tirx.Expr:
    negative, positive = bool(attrs.detect_negative), bool(attrs.detect_positive)
    if negative and positive:
        return tirx.isinf(x)
    if not (negative or positive):
        return tirx.const(False, "bool")
    side = x < _c(0, x) if negative else x > _c(0, x)
    return tirx.And(tirx.isinf(x), side)


UNARY: dict[OpDef, Scalar] = {
    m.Exp: _intrinsic(tirx.exp),
    m.Log: _intrinsic(tirx.log),
    m.Sqrt: _intrinsic(tirx.sqrt),
    m.Reciprocal: _in_float32(lambda x, _: _c(1, x) / x),
    m.Floor: _intrinsic(tirx.floor),
    m.Ceil: _intrinsic(tirx.ceil),
    m.Round: _intrinsic(tirx.nearbyint),  # the default rounding mode rounds halves to even; tirx.round does not
    m.Erf: _intrinsic(tirx.erf),
    m.Abs: lambda x, _: x if dtype_of(x).startswith("uint") else tirx.abs(x),
    m.Neg: lambda x, _: -x,
    m.Sign: _sign,
    m.Sin: _intrinsic(tirx.sin),
    m.Cos: _intrinsic(tirx.cos),
    m.Tan: _intrinsic(tirx.tan),
    m.Asin: _intrinsic(tirx.asin),
    m.Acos: _intrinsic(tirx.acos),
    m.Atan: _intrinsic(tirx.atan),
    m.Sinh: _in_float32(_sinh),
    m.Cosh: _in_float32(_cosh),
    m.Asinh: _intrinsic(tirx.asinh),
    m.Acosh: _intrinsic(tirx.acosh),
    m.Atanh: _intrinsic(tirx.atanh),
    m.Celu: _in_float32(_celu),
    m.Mish: _in_float32(_mish),
    m.ThresholdedRelu: lambda x, a: tirx.Select(x > _c(a.alpha, x), x, _c(0, x)),
    m.Shrink: _shrink,
    m.IsNaN: lambda x, _: tirx.isnan(x),
    m.IsInf: _is_inf,
}


def _unary(scalar: Scalar) -> Lowering:
    def build(call: Call) -> Kernel:
        (x,) = call.inputs
        return Kernel([te.compute(x.shape, lambda *i: scalar(x[i], call.attrs), name="y")], KernelKind.INJECTIVE)

    return Lowering(build)


def _broadcasting(combine: Callable[[Any], Callable[..., tirx.Expr]]) -> Lowering:
    """`combine(attrs)` applied to the operands broadcast to the output's (physical) shape."""

    def build(call: Call) -> Kernel:
        y = elementwise(physical_shape(call.out_types[0]), call.inputs, combine(call.attrs), "y")
        return Kernel([y], KernelKind.INJECTIVE)

    return Lowering(build)


def _pow(x: tirx.Expr, y: tirx.Expr) -> tirx.Expr:
    wide = _wide(dtype_of(x))
    return tirx.power(x.astype(wide), y.astype(wide)).astype(dtype_of(x))


def _safe_divisor(b: tirx.Expr) -> tirx.Expr:
    trap = b == _c(0, b)
    if not dtype_of(b).startswith("uint"):
        trap = tirx.Or(trap, b == _c(-1, b))
    return tirx.Select(trap, _c(1, b), b)


def _mod(attrs: m.ModAttrs) -> Callable[[tirx.Expr, tirx.Expr], tirx.Expr]:
    def mod(a: tirx.Expr, b: tirx.Expr) -> tirx.Expr:
        if _is_float(a):  # the shape rule admits floats with fmod=1 only; LLVM's frem, CUDA's fmod (exact)
            wide = _wide(dtype_of(a))
            return tirx.truncmod(a.astype(wide), b.astype(wide)).astype(dtype_of(a))
        remainder = tirx.truncmod if attrs.fmod else tirx.floormod
        return remainder(a, _safe_divisor(b))

    return mod


def _extreme(wins: Callable[[tirx.Expr, tirx.Expr], tirx.Expr], integer: Callable[..., tirx.Expr]):
    def pick(a: tirx.Expr, b: tirx.Expr) -> tirx.Expr:
        if not _is_float(a):
            return integer(a, b)
        return tirx.Select(tirx.Or(wins(a, b), tirx.isnan(a)), a, b)

    return lambda _: lambda *values: functools.reduce(pick, values)


def _mean(*values: tirx.Expr) -> tirx.Expr:
    dtype = dtype_of(values[0])
    wide = _wide(dtype)
    total = functools.reduce(lambda s, v: s + v.astype(wide), values[1:], values[0].astype(wide))
    return (total / const(len(values), wide)).astype(dtype)


LOWERINGS: dict[OpDef, Lowering] = {
    **{op: _unary(scalar) for op, scalar in UNARY.items()},
    m.Pow: _broadcasting(lambda _: _pow),
    m.Mod: _broadcasting(_mod),
    m.Max: _broadcasting(_extreme(lambda a, b: a > b, tirx.max)),
    m.Min: _broadcasting(_extreme(lambda a, b: a < b, tirx.min)),
    m.Mean: _broadcasting(lambda _: _mean),
}
