"""Small TE helpers every lowering family shares: broadcasting, constants (padding: layouts.pad_spatial)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tvm import te, tirx

from cnncompile.backends.tvm.kernel import shape_of


FLOAT_TYPES = frozenset({"float16", "bfloat16", "float32", "float64"})


def is_float(dtype: object) -> bool:
    """Whether a TVM element type (or its name) is a float, bfloat16 included."""
    return str(dtype) in FLOAT_TYPES


def widen(value: tirx.Expr, dtype: object) -> tirx.Expr:
    """`value` converted to `dtype` for arithmetic (a 16-bit float read into its float32 accumulator); itself
    when it already has that type."""
    return value if dtype_of(value) == str(dtype) else value.astype(str(dtype))


def bf16_bits_value(bits: tirx.Expr) -> tirx.Expr:
    """The float32 value of a bfloat16 held as its uint16 bits: the upper half of a float32's."""
    return tirx.reinterpret("float32", tirx.shift_left(bits.astype("uint32"), tirx.const(16, "uint32")))


def dtype_of(value: te.Tensor | tirx.Expr) -> str:
    """The element type of a tensor, an element of one, or an expression: TVM spells it `dtype` or `ty`."""
    return str(value.dtype if hasattr(value, "dtype") else value.ty)


def const(value: float | int | bool, dtype: object) -> tirx.Expr:
    """`value` as a `dtype` immediate; integer and boolean dtypes truncate it as a NumPy cast would.

    `dtype` may be TVM's type object (a tensor's `.dtype`) or its name.
    """
    dtype = str(dtype)
    if dtype == "bool":
        return tirx.const(bool(value), dtype)
    return tirx.const(value if is_float(dtype) else int(value), dtype)


# A product as a TE reducer (te has sum, max and min built in): ReduceProd's topi.prod aside, CumProd and
# ScatterElements' mul reduction use it.
PRODUCT = te.comm_reducer(lambda a, b: a * b, lambda t: const(1, t), name="product")


def lowest(dtype: object) -> tirx.Expr:
    """The identity of max: -inf for floats, the smallest value for integers."""
    dtype = str(dtype)
    return tirx.min_value(dtype) if not is_float(dtype) else tirx.const(float("-inf"), dtype)


def broadcast_read(tensor: te.Tensor, index: Sequence[tirx.Expr]) -> tirx.Expr:
    """tensor at `index` of the broadcast output: NumPy rules, right-aligned, size-1 dims pinned to 0."""
    shape = shape_of(tensor)
    trailing = index[len(index) - len(shape):] if shape else ()
    return tensor[tuple(0 if d == 1 else i for d, i in zip(shape, trailing))]


def elementwise(shape: Sequence[int], inputs: Sequence[te.Tensor], combine: Callable[..., tirx.Expr],
                name: str) -> te.Tensor:
    """out[i] = combine(*(each input broadcast to `shape`)[i])."""
    return te.compute(tuple(shape), lambda *i: combine(*(broadcast_read(t, i) for t in inputs)), name=name)
