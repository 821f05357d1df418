"""Schedules per target: our CPU templates for LLVM, dlight's GPU rules for CUDA.

Both tables are keyed by what a kernel needs: a conv's plan `Template`, or the kind of
every other kernel (`template_of`).
"""

from __future__ import annotations

from tvm import tirx

from cnncompile.backends.tvm.kernel import Kernel, KernelKind
from cnncompile.backends.tvm.plan import Template
from cnncompile.backends.tvm.schedule.cpu import schedule_cpu
from cnncompile.backends.tvm.schedule.cuda import schedule_cuda
from cnncompile.backends.tvm.target import TargetSpec


def template_of(kernel: Kernel) -> KernelKind | Template:
    """The key of the kernel's schedule: its plan's template for a conv, else its kind."""
    return kernel.plan.template if kernel.plan is not None else kernel.kind


def schedule(func: tirx.PrimFunc, kernel: Kernel, target: TargetSpec) -> tirx.PrimFunc:
    """The kernel's PrimFunc scheduled for the target; a blocked CPU kernel by the tile its weights were
    packed for (`kernel.tile`)."""
    if target.is_gpu:
        return schedule_cuda(func, template_of(kernel), target.to_tvm())
    return schedule_cpu(func, template_of(kernel), target.vector_lanes, kernel.tile)
