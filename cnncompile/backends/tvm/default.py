"""TVM's own generic path, kept reachable for comparison (`cnncompile compile --tvm-default`).

The model goes through TVM's relax ONNX frontend (`from_onnx`) and TVM's default
pipeline for the target (legalize every high-level op, FuseOps + FuseTIR, and on CUDA
dlight's default schedules), with none of our passes, lowerings or schedules. On CPU
that pipeline leaves convolutions unscheduled and single-threaded, which is the point:
it is the baseline issue 6 measures our backend against.

It takes the imported graph exported back to ONNX (`to_onnx`, by the API) rather than the
user's file, so zoo models and graphs built in Python take the same road and every input
shape is already bound.
"""

from __future__ import annotations

import onnx
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx

from cnncompile.backends.tvm.target import TargetSpec

PIPELINE = "tvm-default"


def _returning_tuple(module: tvm.IRModule) -> tvm.IRModule:
    """`module` (changed in place) with `main` returning a tuple even for one output: the calling
    convention of our own modules, so one VMRunner serves both."""
    main = module["main"]
    if not isinstance(main.ret_ty, relax.TupleType):
        body = relax.SeqExpr(main.body.blocks, relax.Tuple([main.body.body]))
        wrapped = relax.Function(main.params, body, relax.TupleType([main.ret_ty]), attrs=main.attrs)
        module.update_func(module.get_global_var("main"), wrapped)
    return module


def import_onnx(model: onnx.ModelProto) -> tvm.IRModule:
    """`model` as TVM's relax ONNX frontend imports it, weights bound as constants."""
    return _returning_tuple(from_onnx(model, keep_params_in_input=False))


def build_default(model: onnx.ModelProto, target: TargetSpec) -> relax.VMExecutable:
    """`model` built by TVM's default relax pipeline for `target`."""
    tvm_target = target.to_tvm()
    return tvm.compile(import_onnx(model), target=tvm_target, relax_pipeline=relax.get_default_pipeline(tvm_target))
