"""What every conv algorithm's lowering starts from: the node as a `ConvProblem`, its requested
register tile checked, and index arithmetic between N-D positions and flat offsets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tvm import te, tirx

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.backends.tvm.kernel import Call, shape_of
from cnncompile.backends.tvm.lowering.common import const, zero_padded
from cnncompile.backends.tvm.lowering.epilogue import Epilogue
from cnncompile.backends.tvm.tiling import SPARE_REGISTERS, ConvTile, registers, requested_tile
from cnncompile.errors import AttrError, CnnCompileError
from cnncompile.ops.spatial import Window


@dataclass(frozen=True)
class ConvProblem:
    """One conv node as the algorithms see it: operands, resolved window and epilogue."""

    call: Call
    x: te.Tensor
    w: te.Tensor
    window: Window
    epilogue: Epilogue

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.call.out_types[0].shape)

    @property
    def group(self) -> int:
        return self.call.attrs.group

    @property
    def group_in(self) -> int:
        return shape_of(self.w)[1]

    @property
    def group_out(self) -> int:
        return self.out_shape[1] // self.group

    @property
    def taps(self) -> tuple[int, ...]:
        return shape_of(self.w)[2:]

    @property
    def dtype(self) -> str:
        return str(self.x.dtype)

    def padded(self, extra_end: Sequence[int] | None = None) -> te.Tensor:
        """X zero-padded by the conv's pads, plus `extra_end` more at the end of each spatial dim."""
        end = [e + extra for e, extra in zip(self.window.pads_end, extra_end or [0] * len(self.window.pads_end))]
        return zero_padded(self.x, self.window.pads_begin, end, const(0, self.x.dtype))

    def input_channel(self, g: tirx.Expr, c: tirx.Expr) -> tirx.Expr:
        """The input channel of channel `c` within group `g`."""
        return g * self.group_in + c if self.group > 1 else c

    def gemm_tile(self, columns: int, rows: int) -> ConvTile | None:
        """attrs.tile for a kernel whose GEMM vectorizes `columns` and tiles `rows` (output channels): read
        as (vectors of columns, 1, rows per tile) and checked; None when tuning chose none."""
        return checked_tile(self.call, columns, 1, rows) if self.call.attrs.tile else None



def require_constant_weights(call: Call, algorithm: ConvAlgorithm) -> None:
    """For the algorithms that transform the weights at build time."""
    if not call.constant[1]:
        raise CnnCompileError(f"{algorithm.value} transforms the weights at build time, so they must be a "
                              "graph constant; these arrive at run time")


def checked_tile(call: Call, vectorized: int, rows: int, cols: int) -> ConvTile:
    """The node's requested register tile (attrs.tile) for a CPU kernel that vectorizes an axis of
    `vectorized` elements and tiles `rows` x `cols` others; an error saying why when it does not fit."""
    chosen = tuple(call.attrs.tile)
    if call.lanes is None:
        raise AttrError(f"tile {list(chosen)}: (vectors, rows, cols) register tiles are for CPU kernels")
    tile = requested_tile(chosen)
    problems = []
    if vectorized % (tile.vectors * call.lanes):
        problems.append(f"{tile.vectors} vectors of {call.lanes} lanes do not divide {vectorized}")
    if rows % tile.rows:
        problems.append(f"{tile.rows} rows do not divide {rows}")
    if cols % tile.cols:
        problems.append(f"{tile.cols} columns do not divide {cols}")
    if tile.accumulators + tile.vectors + SPARE_REGISTERS > registers(call.lanes):
        problems.append(f"{tile.accumulators} accumulators and {tile.vectors} weight vectors need more than the "
                        f"{registers(call.lanes)} registers")
    if problems:
        raise AttrError(f"tile {list(chosen)} does not fit this conv: {'; '.join(problems)}")
    return tile


def flat(index: Sequence[tirx.Expr], dims: Sequence[int]) -> tirx.Expr:
    """The row-major offset of `index` in an array of `dims`."""
    offset = index[0]
    for i, d in zip(index[1:], dims[1:]):
        offset = offset * d + i
    return offset


def unflat(offset: tirx.Expr, dims: Sequence[int]) -> list[tirx.Expr]:
    """The inverse of `flat`."""
    index = []
    for d in reversed(dims[1:]):
        index.append(offset % d)
        offset = offset // d
    return [offset, *reversed(index)]


def round_up(value: int, multiple: int | None) -> int:
    return value if multiple is None else -(-value // multiple) * multiple
