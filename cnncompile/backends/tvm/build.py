"""From a lowered IRModule to an executable for the Relax VM, and back from disk.

TVM's default Relax pipeline legalizes high-level ops and then re-fuses every call into
new, unscheduled PrimFuncs (FuseOps + FuseTIR). Our module has no high-level ops, and
its PrimFuncs are already fused and scheduled by our passes and templates, so the build
runs only the passes that turn calls into VM instructions and plan memory.
RewriteDataflowReshape lets a Reshape-like kernel become a zero-copy view.

The PrimFuncs go through TVM's own TIR pipeline with one pass added to the host's
finalization: TVM keeps a CPU buffer on the stack only under 1 KiB and gets any larger one
from its workspace allocator, a call per allocation. An AVX-512 register tile of 28
accumulators is 1792 bytes, so every tile paid that call, and LLVM, which cannot promote
heap memory to registers, loaded and stored accumulators inside the reduction loop
(1x1 conv 192->32 at 28x28: 0.074 ms, 0.043 with the tile on the stack).

That pipeline is for CPU builds only. In a CUDA build the host function allocates the
buffers its kernels pass between them (Winograd's transformed tiles, the FFT's spectra):
on the stack they would be host `alloca`s whose addresses a kernel reads, an illegal
address on the GPU. A CUDA build runs TVM's default pipeline, whose host finalization
takes each such buffer from the device's workspace allocator.
"""

from __future__ import annotations

import math

import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.tirx import compilation_pipeline

from cnncompile.backends.tvm.target import TargetSpec

CPU_TIR_PIPELINE = "cnncompile-cpu"
# Buffers of a kernel up to this size live on its stack: a register tile takes at most 2 KiB (32 AVX-512
# registers), and a pool thread's stack is megabytes.
MAX_STACK_BUFFER_BYTES = 16 * 1024
_ON_STACK = {"disable_lower_builtin": tirx.const(True, "bool")}


def vm_pipeline() -> tvm.transform.Pass:
    return tvm.transform.Sequential([
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
        relax.transform.LowerAllocTensor(),
        relax.transform.KillAfterLastUse(),
        relax.transform.LowerRuntimeBuiltin(),
        relax.transform.ComputePrimValue(),
        relax.transform.VMShapeLower(),
        relax.transform.AttachGlobalSymbol(),
    ])


def _stack_bytes(buffer: tirx.Buffer) -> int | None:
    """The buffer's size if it is a constant-size global buffer, else None."""
    if buffer.scope() != "global" or not all(isinstance(d, tirx.IntImm) for d in buffer.shape):
        return None
    return math.prod(int(d) for d in buffer.shape) * buffer.dtype.bits // 8


def _on_stack(allocation: tirx.AllocBuffer) -> tirx.AllocBuffer:
    size = _stack_bytes(allocation.buffer)
    if size is None or size > MAX_STACK_BUFFER_BYTES:
        return allocation
    return tirx.AllocBuffer(allocation.buffer, annotations={**allocation.annotations, **_ON_STACK},
                            span=allocation.span)


@tirx.transform.prim_func_pass(opt_level=0, name="KeepSmallBuffersOnStack")
def keep_small_buffers_on_stack(func: tirx.PrimFunc, _mod: tvm.IRModule, _ctx) -> tirx.PrimFunc:
    return func.with_body(tvm_ffi.structural_map(func.body, [(tirx.AllocBuffer, _on_stack)], order="post"))


def _tir_pipeline():
    lower, finalize_host, finalize_device = compilation_pipeline.get_tir_pipeline("default")
    return lower, lambda: tvm.transform.Sequential([keep_small_buffers_on_stack, finalize_host()]), finalize_device


compilation_pipeline.register_tir_pipeline(CPU_TIR_PIPELINE, _tir_pipeline)


def tir_pipeline(target: TargetSpec) -> str:
    """The registered TIR pipeline a build for `target` runs: small buffers go on the stack on CPUs only."""
    return "default" if target.is_gpu else CPU_TIR_PIPELINE


def build_module(module: tvm.IRModule, target: TargetSpec) -> tvm.runtime.Executable:
    """A model's module for the VM, or PrimFuncs alone (a kernel measured by tuning): tvm.compile runs the
    VM passes only where there are Relax functions, the same TIR pipeline either way."""
    return tvm.compile(module, target=target.to_tvm(), relax_pipeline=vm_pipeline(),
                       tir_pipeline=tir_pipeline(target))
