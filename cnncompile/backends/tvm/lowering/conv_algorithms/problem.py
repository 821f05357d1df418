"""What every conv algorithm's lowering starts from: the node and its plan as a `ConvProblem`, the window
and group index arithmetic (written once, here), and index arithmetic between N-D positions and flat offsets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tvm import te, tirx

from cnncompile.algorithms.windows import Window
from cnncompile.backends.tvm.kernel import Call, Kernel, KernelKind, shape_of
from cnncompile.backends.tvm.lowering.common import const, widen
from cnncompile.backends.tvm.lowering.epilogue import Epilogue
from cnncompile.backends.tvm.lowering.layouts import pad_spatial
from cnncompile.backends.tvm.plan import ConvPlan


@dataclass(frozen=True)
class ConvProblem:
    """One conv node as the algorithms see it: its plan, operands, resolved window and epilogue."""

    call: Call
    plan: ConvPlan
    epilogue: Epilogue

    @property
    def window(self) -> Window:
        return self.plan.spec.window

    @property
    def x(self) -> te.Tensor:
        return self.call.inputs[0]

    @property
    def w(self) -> te.Tensor:
        return self.call.inputs[1]

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Y's logical shape."""
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

    def product(self, value: tirx.Expr, weight: tirx.Expr) -> tirx.Expr:
        """One term of the conv's dot product, in the plan's accumulator type (float32 for 16-bit operands)."""
        accumulator = self.plan.types.accumulator.value
        return widen(value, accumulator) * widen(weight, accumulator)

    def kernel(self) -> Kernel:
        """The empty kernel the algorithm fills: a conv, built from (and carrying) the plan."""
        return Kernel([], KernelKind.CONV, tile=self.plan.tile, plan=self.plan)

    def padded(self, extra_end: Sequence[int] | None = None) -> te.Tensor:
        """X (in its layout) zero-padded by the conv's pads, plus `extra_end` more at the end of each spatial dim."""
        end = [e + extra for e, extra in zip(self.window.pads_end, extra_end or [0] * len(self.window.pads_end))]
        return pad_spatial(self.x, self.plan.source, self.window.pads_begin, end, const(0, self.x.dtype))

    def window_positions(self, pixel: Sequence[tirx.Expr], taps: Sequence[tirx.Expr]) -> list[tirx.Expr]:
        """The padded input's position that output `pixel` reads at window offset `taps`: p * s + k * d."""
        return [q * s + k * d for q, k, s, d in zip(pixel, taps, self.window.strides, self.window.dilations)]

    def input_channel(self, g: tirx.Expr | int, c: tirx.Expr) -> tirx.Expr:
        """The input channel of channel `c` within group `g`."""
        return g * self.group_in + c if self.group > 1 else c


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
