"""Matrix products: Gemm and MatMul, each one reduction named `gemm` over K.

The `gemm` stage's spatial loops end in (i, j) whenever both operands are matrices, the
shape GEMM schedules tile; Gemm's alpha, beta and C are an element-wise epilogue. On a
CPU, a Gemm whose B is a constant (a dense layer's weights) is lowered blocked: B is
repacked at build time to (N/B, K, B), whatever transB says, so a block of output columns
is one contiguous vector per step of K. When N does not fill whole vectors (a classifier's
1000 classes on 16 lanes), B is packed with zero columns up to the next vector and the
product computes them too, its epilogue storing only the first N: the alternative, an
unblocked product over transposed weights, gathers one strided element per lane.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import GEMM_STAGE, Call, Kernel, KernelKind, Lowering, shape_of
from cnncompile.backends.tvm.lowering.common import broadcast_read, const, dtype_of, widen
from cnncompile.backends.tvm.tiling import ConvTile, conv_tile
from cnncompile.ir.types import DType
from cnncompile.ops import linalg
from cnncompile.ops.registry import OpDef


def _gemm(call: Call) -> Kernel:
    a, b, *rest = call.inputs
    attrs = call.attrs
    k_extent = shape_of(a)[0] if attrs.transA else shape_of(a)[1]
    k = te.reduce_axis((0, k_extent), name="k")
    m, n = call.out_types[0].shape
    tile = _blocked_tile(call, m, n)
    columns = n if tile is None else _whole_vectors(n, call.lanes)
    kernel = Kernel([], KernelKind.GEMM if tile is None else KernelKind.GEMM_BLOCKED, tile=tile)
    right = _right_operand(kernel, call, b, tile, columns)

    def product(i, j):
        left = a[k, i] if attrs.transA else a[i, k]
        return te.sum(_term(left, right(k, j)), axis=k)

    y = te.compute((m, columns), product, name=GEMM_STAGE)
    kernel.outputs.append(_gemm_epilogue(y, rest[0] if rest else None, attrs, n, call.out_types[0].dtype.value))
    return kernel


def _term(left: tirx.Expr, right: tirx.Expr) -> tirx.Expr:
    """One product of the dot, in the accumulator of its operands' type (float32 for 16-bit floats)."""
    accumulator = DType(dtype_of(left)).accumulator.value
    return widen(left, accumulator) * widen(right, accumulator)


def _whole_vectors(n: int, lanes: int) -> int:
    """n rounded up to whole vectors: the columns a blocked product computes."""
    return -(-n // lanes) * lanes


def _blocked_tile(call: Call, m: int, n: int) -> ConvTile | None:
    """A (rows x vectors) register tile over (M, N rounded up to vectors) on a CPU when B is constant."""
    if call.lanes is None or not call.constant[1]:
        return None
    return conv_tile(_whole_vectors(n, call.lanes), 1, m, call.lanes)


def pack_columns(b: np.ndarray, block: int, transposed: bool, columns: int) -> np.ndarray:
    """B as (columns/block, K, block), zero past its N columns: each block of output columns
    contiguous per step of K."""
    rows_first = b if transposed else b.T  # (N, K)
    n, k = rows_first.shape
    padded = np.zeros((columns, k), rows_first.dtype)
    padded[:n] = rows_first
    return np.ascontiguousarray(padded.reshape(columns // block, block, k).transpose(0, 2, 1))


def _right_operand(kernel: Kernel, call: Call, b: te.Tensor, tile: ConvTile | None, columns: int) -> Callable:
    """op(B)[k, j] as a function of (k, j), reading the packed copy when the kernel is blocked."""
    transposed = bool(call.attrs.transB)
    if tile is None:
        return partial(_read_transposed if transposed else _read, b)
    block = tile.vectors * call.lanes
    k_extent = shape_of(b)[1 if transposed else 0]
    packed = kernel.repack(1, (columns // block, k_extent, block), str(b.dtype),
                           partial(pack_columns, block=block, transposed=transposed, columns=columns), "b_packed")
    return partial(_read_packed, packed, block)


def _read(b: te.Tensor, k: tirx.Expr, j: tirx.Expr) -> tirx.Expr:
    return b[k, j]


def _read_transposed(b: te.Tensor, k: tirx.Expr, j: tirx.Expr) -> tirx.Expr:
    return b[j, k]


def _read_packed(packed: te.Tensor, block: int, k: tirx.Expr, j: tirx.Expr) -> tirx.Expr:
    return packed[j // block, k, j % block]


def _gemm_epilogue(y: te.Tensor, c: te.Tensor | None, attrs, n: int, store: str) -> te.Tensor:
    """alpha * y + beta * C over the first n columns, rounded to `store` where the product accumulated wider;
    y itself when there is nothing to scale, add, drop or round."""
    m, columns = shape_of(y)
    if attrs.alpha == 1 and c is None and columns == n and str(y.dtype) == store:
        return y
    alpha, beta = const(attrs.alpha, y.dtype), const(attrs.beta, y.dtype)

    def finish(i, j):
        scaled = alpha * y[i, j] if attrs.alpha != 1 else y[i, j]
        total = scaled + beta * widen(broadcast_read(c, (i, j)), y.dtype) if c is not None else scaled
        return widen(total, store)

    return te.compute((m, n), finish, name="epilogue")


def matmul_indices(a_shape: Sequence[int], b_shape: Sequence[int], index: Sequence[tirx.Expr],
                   k: tirx.Expr) -> tuple[tuple[tirx.Expr, ...], tuple[tirx.Expr, ...]]:
    """The elements of A and B that output `index` multiplies at reduction step `k`, as NumPy's matmul
    broadcasts: batch dims first; a 1-D A is a row and a 1-D B a column, their unit dim absent from the
    output. Read them with broadcast_read."""
    batch = len(np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2])))
    batch_index, rest = tuple(index[:batch]), list(index[batch:])
    a_index = (*batch_index, rest.pop(0), k) if len(a_shape) > 1 else (k,)
    b_index = (*batch_index, k, rest.pop(0)) if len(b_shape) > 1 else (k,)
    return a_index, b_index


def _matmul(call: Call) -> Kernel:
    """NumPy matmul (matmul_indices), accumulated in the plan's accumulator type."""
    a, b = call.inputs
    a_shape, b_shape = shape_of(a), shape_of(b)
    out_shape = call.out_types[0].shape
    k = te.reduce_axis((0, a_shape[-1]), name="k")

    def product(*index):
        a_index, b_index = matmul_indices(a_shape, b_shape, index, k)
        return te.sum(_term(broadcast_read(a, a_index), broadcast_read(b, b_index)), axis=k)

    product_stage = te.compute(out_shape, product, name=GEMM_STAGE)
    store = call.out_types[0].dtype.value
    if str(product_stage.dtype) == store:
        return Kernel([product_stage], KernelKind.GEMM)
    rounded = te.compute(out_shape, lambda *i: product_stage[i].astype(store), name="epilogue")
    return Kernel([rounded], KernelKind.GEMM)


LOWERINGS: dict[OpDef, Lowering] = {
    linalg.Gemm: Lowering(_gemm),
    linalg.MatMul: Lowering(_matmul),
}
