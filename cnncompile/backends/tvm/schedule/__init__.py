"""Schedules per target: our CPU templates for LLVM, dlight's GPU rules for CUDA."""

from __future__ import annotations

from tvm import tirx

from cnncompile.backends.tvm.kernel import KernelKind
from cnncompile.backends.tvm.schedule.cpu import schedule_cpu
from cnncompile.backends.tvm.schedule.cuda import schedule_cuda
from cnncompile.backends.tvm.target import TargetSpec
from cnncompile.backends.tvm.tiling import ConvTile


def schedule(func: tirx.PrimFunc, kind: KernelKind, target: TargetSpec, tile: ConvTile | None) -> tirx.PrimFunc:
    """`tile` is the register tile a blocked CPU kernel's weights were packed for (None otherwise)."""
    if target.is_gpu:
        return schedule_cuda(func, kind, target.to_tvm())
    return schedule_cpu(func, kind, target.vector_lanes, tile)
