"""CUDA schedules: TVM's dlight GPU rules, chosen per kernel kind, then checked.

A GPU is rarely available to test on, so CUDA stays on well-trodden ground: convolutions
are lowered as one direct reduction, which dlight's Matmul rule recognizes as a GEMM over
(output pixels x output channels x window) and schedules with shared-memory tiles and
thread/block binding; matrix products use Matmul or GEMV; reductions the (general)
reduction rules; everything else the fallback binding of spatial loops to threads.
Every scheduled kernel is lowered and checked against the device limits
(`verify_gpu_code`) before it is accepted.
"""

from __future__ import annotations

import tvm
from tvm import tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir import transform as st

from cnncompile.backends.tvm.kernel import KernelKind
from cnncompile.backends.tvm.plan import Template
from cnncompile.errors import CnnCompileError

# sm_80 / sm_90 limits a kernel must respect.
GPU_LIMITS = {
    "max_shared_memory_per_block": 48 * 1024,
    "max_threads_per_block": 1024,
    "max_thread_x": 1024,
    "max_thread_y": 1024,
    "max_thread_z": 64,
    "max_vthread": 8,
    "max_vector_bytes": 16,
}

# The PrimFunc attribute naming the dlight rule that scheduled it, for tests and reports.
RULE_ATTR = "cnncompile.schedule_rule"

_RULES: dict[KernelKind | Template, tuple] = {
    Template.DIRECT: (dl.gpu.Matmul(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()),
    Template.DIRECT_STORED: (dl.gpu.Matmul(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()),
    KernelKind.GEMM: (dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.Fallback()),
    Template.GEMM: (dl.gpu.Matmul(), dl.gpu.Fallback()),
    Template.WINOGRAD: (dl.gpu.Fallback(),),
    Template.FFT: (dl.gpu.Fallback(),),
    KernelKind.POOL: (dl.gpu.GeneralReduction(), dl.gpu.Fallback()),
    KernelKind.REDUCE: (dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()),
    KernelKind.INJECTIVE: (dl.gpu.Fallback(),),
}


def schedule_cuda(func: tirx.PrimFunc, kind: KernelKind | Template, target: tvm.target.Target) -> tirx.PrimFunc:
    """The first of the template's rules that applies; a kernel none of them schedules is an error. Some
    dlight rules raise on a kernel they do not fit instead of declining (GEMV unpacks the loops it expects
    from an integer product with zero points; GeneralReduction leaves a grouped integer conv with a
    reduction cross-thread lowering refuses): that too is a rule that does not apply."""
    rules = _RULES.get(kind, ())
    with target:
        for rule in rules:
            try:
                scheduled = rule.apply(func, target, False)
                if scheduled is None:
                    continue
                result = scheduled.mod["main"].with_attr("tirx.is_scheduled", True)
                result = result.with_attr(RULE_ATTR, type(rule).__name__)
                check_gpu_kernel(result, target)
            except (ValueError, tvm.error.InternalError):
                continue
            return result
    tried = ", ".join(type(r).__name__ for r in rules) or "none exist for it"
    raise CnnCompileError(f"no CUDA schedule applies to this {kind.value} kernel (rules tried: {tried})")


def lowered_for_check(func: tirx.PrimFunc, target: tvm.target.Target) -> tirx.PrimFunc:
    """`func` lowered far enough for `verify_gpu_code`: blocks gone, buffers compacted, threads bound."""
    mod = tvm.IRModule({"main": func.with_attr("target", target)})
    passes = tvm.transform.Sequential([
        st.LowerCrossThreadReduction(), st.LowerInitBlock(), st.PlanAndUpdateBufferAllocationLocation(),
        st.ConvertBlocksToOpaque(), st.CompactBufferAllocation(), st.LowerOpaqueBlock(),
    ])
    return passes(mod)["main"]


def check_gpu_kernel(func: tirx.PrimFunc, target: tvm.target.Target) -> None:
    """Raise unless `func` is well formed and fits the device's thread and shared-memory limits."""
    tvm.s_tir.analysis.verify_well_formed(func)
    if not tvm.s_tir.analysis.verify_gpu_code(lowered_for_check(func, target), GPU_LIMITS):
        raise CnnCompileError("a CUDA kernel exceeds the sm_80 limits on threads per block or shared memory")
