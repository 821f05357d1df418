"""The contract between lowerings and schedules: what one IR node becomes in TE.

A lowering turns one node into TE tensors (`Kernel`); the kernel's `kind` picks the
schedule template that the target applies to its PrimFunc, and for a conv the kind is
CONV and its plan's `Template` (backends/tvm/plan.py) picks the template. Names of the TE
stages are part of the contract: a conv's reduction stage is named `CONV_STAGE`, a GEMM's
`GEMM_STAGE`, a POOL's `POOL_STAGE`, so schedules find their anchor without guessing.
The convolution algorithms (lowering/conv_algorithms/) add their own stages: the
materialized `IM2COL_STAGE`, Winograd's input and output transforms (two passes each:
`<stage>_rows`, then the stage itself), the FFT's one-axis DFTs (`DFT_STAGE` and
`IDFT_STAGE` numbered in order) around the `SPECTRUM_STAGE` product.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tvm import te

from cnncompile.backends.tvm.plan import ConvPlan
from cnncompile.backends.tvm.target import TargetSpec
from cnncompile.backends.tvm.tiling import ConvTile
from cnncompile.ir.types import TensorType

Repack = Callable[[np.ndarray], np.ndarray]

PAD_STAGE = "pad"
CONV_STAGE = "conv"
GEMM_STAGE = "gemm"
POOL_STAGE = "pool"
IM2COL_STAGE = "im2col"
WINOGRAD_INPUT_STAGE = "winograd_input"
WINOGRAD_OUTPUT_STAGE = "winograd_output"
WINOGRAD_CROP_STAGE = "winograd_crop"
DFT_STAGE = "dft"
IDFT_STAGE = "idft"
SPECTRUM_STAGE = "spectrum"
W_PACK_STAGE = "w_pack"    # weights given at run time, packed by the kernel itself
DILATE_STAGE = "dilate"    # ConvTranspose's input with zeros between pixels
W_FLIP_STAGE = "w_flip"    # ConvTranspose's weights, flipped and transposed
PAIR_AXIS = "rpair"        # a conv's innermost reduction over pairs of bf16 input channels (Dot.BF16_PAIRS)


class KernelKind(enum.Enum):
    """Which family of schedule templates a kernel needs; a conv's template is its plan's."""

    CONV = "conv"            # a convolution built from its plan: the plan's Template picks the schedule
    GEMM = "gemm"            # a (batched) matrix product
    GEMM_BLOCKED = "gemm_blocked"  # GEMM with B packed in blocks of output columns (CPU)
    POOL = "pool"            # a reduction over a small spatial window
    REDUCE = "reduce"        # reductions along axes (softmax, means, normalizations)
    INJECTIVE = "injective"  # every output element from a few input elements: elementwise, data movement


@dataclass(frozen=True)
class Call:
    """What a lowering sees of its node: TE placeholders for the inputs, attrs, the types and the target.

    `constant[i]` says whether input i is a graph constant (known at build time): with the
    target it lets a lowering store constant weights in the layout its CPU schedule
    vectorizes best.
    """

    inputs: tuple[te.Tensor, ...]
    attrs: Any
    in_types: tuple[TensorType, ...]
    out_types: tuple[TensorType, ...]
    constant: tuple[bool, ...]
    target: TargetSpec

    @property
    def lanes(self) -> int | None:
        """The SIMD width when the target is a CPU, None for GPUs."""
        return None if self.target.is_gpu else self.target.vector_lanes


@dataclass
class Kernel:
    """One node in TE: its outputs, its schedule kind, and tables known at build time.

    Blocked kinds carry the register `tile` their weights were packed for, which their
    schedule must use; a conv carries its `plan` (and the plan's tile).

    `tables` are extra placeholders bound to arrays that depend only on the node's
    attributes and types (pooling divisors, Resize's source indices): computing them in
    NumPy with the op's own definition keeps the kernel bit-compatible with the reference
    where float rounding of index arithmetic would otherwise decide a tie.
    """

    outputs: list[te.Tensor]
    kind: KernelKind
    tables: list[tuple[te.Tensor, np.ndarray]] = field(default_factory=list)
    repacked: dict[int, tuple[te.Tensor, Repack]] = field(default_factory=dict)
    tile: ConvTile | None = None
    plan: ConvPlan | None = None

    def table(self, array: np.ndarray, name: str) -> te.Tensor:
        placeholder = te.placeholder(array.shape, str(array.dtype), name=name)
        self.tables.append((placeholder, np.ascontiguousarray(array)))
        return placeholder

    def repack(self, index: int, shape: tuple[int, ...], dtype: str, transform: Repack, name: str) -> te.Tensor:
        """Take constant input `index` in another layout: `transform` maps its array to `shape` at build time.

        The returned placeholder replaces the input's own in the kernel's parameters.
        """
        placeholder = te.placeholder(shape, dtype, name=name)
        self.repacked[index] = (placeholder, transform)
        return placeholder


@dataclass(frozen=True)
class Lowering:
    """An op's entry in the lowering table: `build` turns a Call into a Kernel."""

    build: Callable[[Call], Kernel]


def shape_of(tensor: te.Tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape)


def placeholders(types: Sequence[TensorType]) -> tuple[te.Tensor, ...]:
    """One per operand, in the shape the value is stored in (its layout's physical shape)."""
    return tuple(te.placeholder(t.layout.physical_shape(t.shape) if t.layout else t.shape, t.dtype.value,
                                name=f"in{i}") for i, t in enumerate(types))
