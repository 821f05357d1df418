"""From a lowered IRModule to an executable for the Relax VM, and back from disk.

TVM's default Relax pipeline legalizes high-level ops and then re-fuses every call into
new, unscheduled PrimFuncs (FuseOps + FuseTIR). Our module has no high-level ops, and
its PrimFuncs are already fused and scheduled by our passes and templates, so the build
runs only the passes that turn calls into VM instructions and plan memory.
RewriteDataflowReshape lets a Reshape-like kernel become a zero-copy view.
"""

from __future__ import annotations

import tvm
from tvm import relax

from cnncompile.backends.tvm.target import TargetSpec


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


def build_module(module: tvm.IRModule, target: TargetSpec) -> relax.VMExecutable:
    return tvm.compile(module, target=target.to_tvm(), relax_pipeline=vm_pipeline())
