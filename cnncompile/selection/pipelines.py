"""Pipelines compiled for a target: the passes that depend on one, and what a target adds to a pipeline.

cnncompile.passes knows no target. Here its catalog gains `select-conv-algorithms`, O3
gains the target passes (TARGET_PASSES), and `for_target` gives each target-dependent
pass the target's options. Every command that compiles, compares or lists passes loads
its pipelines through this module, so a TOML file may name any pass of CATALOG.

Importing this module imports no TVM: the target is parsed only when a pipeline is built
to run (cnncompile.selection.options).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnncompile.passes import pipelines as passes
from cnncompile.passes.pipelines import PassInfo, PassSpec, Pipeline, with_passes
from cnncompile.passes.precision import Precision
from cnncompile.selection.options import SelectOptions, select_pass, target_option

if TYPE_CHECKING:
    from cnncompile.backends.tvm.target import TargetSpec

CATALOG = with_passes(passes.CATALOG, PassInfo(
    "select-conv-algorithms", "every conv a FusedConv with the algorithm, layout and tile that the cost "
    "model (or a tuning cache) finds fastest on the target", select_pass, SelectOptions))

# What a preset adds when it is compiled for a target (the presets themselves stay target-independent,
# so that `compare` on the reference backend and O0..O2 builds mean the same everywhere).
# O3 chooses each conv's kernel, lays the feature maps out for the whole graph, then chooses algorithm
# and tile again within the layout each conv was given: what is chosen last is what is built.
TARGET_PASSES: dict[str, tuple[PassSpec, ...]] = {
    "O3": (PassSpec("select-conv-algorithms"), PassSpec("assign-layouts"),
           PassSpec("select-conv-algorithms", {"keep_layouts": True})),
}

# For a pass that depends on the target: the options a compile for a target gives it where the
# pipeline leaves them unset; None for a target the pass has nothing to do on, which leaves it out.
TARGET_OPTIONS: dict[str, Callable[[TargetSpec], dict[str, Any] | None]] = {
    "assign-layouts": lambda target: None if target.is_gpu else {"lanes": target.vector_lanes},
    "select-conv-algorithms": lambda target: {"target": target_option(target)},
}


def preset(name: str) -> Pipeline:
    """The preset `name` (O0..O3), to be compiled for a target by `for_target`."""
    return passes.preset(name, CATALOG, TARGET_PASSES)


def load_pipeline(spec: str) -> Pipeline:
    """A preset by name (O0..O3), or a pipeline read from a TOML file that may name any pass of CATALOG."""
    return passes.load_pipeline(spec, CATALOG, TARGET_PASSES)


# The pass a compile's reduced precision adds (no preset runs it: fp32 is the default).
PRECISION_PASS = "convert-precision"


def resolve_precision(precision: Precision | str, target: TargetSpec) -> Precision:
    """`auto` as the target has it: bf16 on a CPU with bf16 dot products (AVX512_BF16, AMX), fp16 on CUDA
    (tensor cores), fp32 elsewhere; any other precision as given."""
    precision = Precision(precision)
    if precision is not Precision.AUTO:
        return precision
    if target.is_gpu:
        return Precision.FP16
    return Precision.BF16 if target.native_bf16 else Precision.FP32


def for_target(pipeline: Pipeline, target: TargetSpec, precision: Precision | str = Precision.FP32,
               keep_fp32: tuple[str, ...] = ()) -> Pipeline:
    """The pipeline a compile for `target` runs: its target passes appended, and each target-dependent
    pass given the target's options where the pipeline does not set them, or left out where it has
    nothing to do on the target (assign-layouts on a GPU).

    A reduced `precision` (`resolve_precision`) runs convert-precision after the pipeline's own passes
    (BatchNorm folded, epilogues fused, all in float32) and before the target's, which then choose
    kernels for the reduced types; a pipeline that runs convert-precision itself keeps its own options."""
    precision = resolve_precision(precision, target)
    own = tuple(pipeline.passes)
    if (precision is not Precision.FP32 or keep_fp32) and PRECISION_PASS not in {s.name for s in own}:
        own += (PassSpec(PRECISION_PASS, {"precision": precision.value, "keep_fp32": list(keep_fp32)}),)
    specs = []
    for spec in (*own, *pipeline.target_passes):
        options_for = TARGET_OPTIONS.get(spec.name)
        if options_for is not None:
            options = options_for(target)
            if options is None:
                continue
            spec = PassSpec(spec.name, {**options, **spec.options})
        specs.append(spec)
    return Pipeline(pipeline.name, tuple(specs), catalog=CATALOG)
