"""A convolution's epilogue: activation(conv + bias[o] + residual), one element-wise stage.

Every conv kernel ends in it, whatever its algorithm: the direct conv reads its own
result tensor, the GEMM and transform algorithms read their result where it lies (a
group's matrix, a Winograd output tile), so the reshape back to (N, O, *spatial) costs
no extra pass. The schedules compute it while the accumulators are still in registers
where the layout allows.

In reduced precision the conv accumulates in float32 and the epilogue computes there too:
a 16-bit bias or residual is widened as it is read, and the result is rounded once, to
`store`, as it is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tvm import te, tirx

from cnncompile.backends.tvm.kernel import shape_of
from cnncompile.backends.tvm.lowering.activations import activation
from cnncompile.backends.tvm.lowering.common import broadcast_read, dtype_of, widen
from cnncompile.backends.tvm.lowering.layouts import logical_index
from cnncompile.ir.types import Layout
from cnncompile.ops.fused import Activation

EPILOGUE_STAGE = "epilogue"

# Reads the raw conv result at (n, o, *spatial).
ConvRead = Callable[..., tirx.Expr]


@dataclass(frozen=True)
class Epilogue:
    bias: te.Tensor | None = None
    residual: te.Tensor | None = None
    kind: Activation = Activation.NONE
    activation_attrs: object = None
    store: str | None = None  # the output's element type where it is not the accumulator's

    @property
    def empty(self) -> bool:
        return self.bias is None and self.residual is None and self.kind is Activation.NONE and self.store is None

    def _stored(self, y: tirx.Expr) -> tirx.Expr:
        y = activation(y, self.kind, self.activation_attrs)
        return y if self.store is None else y.astype(self.store)

    def finish(self, read: ConvRead, shape: Sequence[int]) -> te.Tensor:
        """The kernel's output of `shape` (N, O, *spatial), the conv's value at each index given by `read`."""

        def body(n, o, *p):
            y = read(n, o, *p)
            if self.bias is not None:
                y = y + widen(self.bias[o], dtype_of(y))
            if self.residual is not None:
                y = y + widen(broadcast_read(self.residual, (n, o, *p)), dtype_of(y))
            return self._stored(y)

        return te.compute(tuple(shape), body, name=EPILOGUE_STAGE)

    def finish_stored(self, read: ConvRead, shape: Sequence[int], layout: Layout,
                      name: str = EPILOGUE_STAGE) -> te.Tensor:
        """The kernel's output stored in `layout` (physical `shape`), the conv's value at each physical index
        given by `read`; a residual comes in the same layout, the bias per logical channel."""

        def body(*index):
            y = read(*index)
            if self.bias is not None:
                y = y + widen(self.bias[logical_index(layout, index)[1]], dtype_of(y))
            if self.residual is not None:
                y = y + widen(self.residual[index], dtype_of(y))
            return self._stored(y)

        return te.compute(tuple(shape), body, name=name)

    def apply(self, conv: te.Tensor) -> te.Tensor:
        """The epilogue over a conv result tensor; the tensor itself when there is nothing to do."""
        if self.empty:
            return conv
        return self.finish(lambda *index: conv[index], shape_of(conv))
