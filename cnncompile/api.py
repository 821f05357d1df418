"""`cnncompile.compile` and `cnncompile.load`: a model in, a deployable compiled model out.

    model = cnncompile.compile("resnet50.onnx", target="llvm", pipeline="O3")
    outputs = model.run({"data": x})
    model.save("build/resnet50")
    same = cnncompile.load("build/resnet50")

The stages are plain calls on a Graph: import (ONNX file, `zoo:NAME` or a Graph), the
pass pipeline, lowering every node to a scheduled PrimFunc, and the TVM build.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

from cnncompile.backends.tvm.build import build_module
from cnncompile.backends.tvm.default import PIPELINE as TVM_DEFAULT, build_default
from cnncompile.backends.tvm.lowering import check_element_types, check_indexable
from cnncompile.backends.tvm.module import lower_graph, lower_graphs
from cnncompile.backends.tvm.runtime import Signature
from cnncompile.backends.tvm.target import (
    TargetSpec, default_target, gpu_memory, gpu_visible, host_cpu, parse_target,
)
from cnncompile.buckets import Buckets, Dims, check_batched_outputs
from cnncompile.compiled import CompiledModel, Provenance, load_compiled
from cnncompile.errors import ModelError
from cnncompile.frontends.load import load_model
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.ir.graph import Graph
from cnncompile.passes import Pipeline, run_pipeline
from cnncompile.passes.manager import PipelineRun
from cnncompile.passes.manager import Step
from cnncompile.passes.precision import Precision, PrecisionOptions, convert_precision
from cnncompile.resources import MemoryLimit, estimate_memory, host_limit
from cnncompile.selection.explain import choices_of
from cnncompile.selection.pipelines import for_target, load_pipeline, resolve_precision
from cnncompile.stages import Stage
from cnncompile.tuning.tuner import TuningOptions, tune_graph

Progress = Callable[[Stage, int, int], None]


def describe_default_target() -> str:
    """The one line that says which target `--target` defaults to here, and why."""
    if gpu_visible():
        return f"target: {default_target()} (default: a CUDA GPU is visible)"
    return f"target: {default_target()} (default: no CUDA GPU is visible, compiling for this CPU)"


def _source(model: Graph | str | os.PathLike, input_shapes: Mapping[str, Sequence[int]] | None
            ) -> tuple[Graph, str, str]:
    """The graph, a name for where it came from, and the sha256 of that source."""
    if isinstance(model, Graph):
        return model.copy(), f"graph:{model.name}", hashlib.sha256(to_onnx(model).SerializeToString()).hexdigest()
    spec = os.fspath(model)
    graph = load_model(spec, input_shapes)
    if Path(spec).is_file():
        digest = hashlib.sha256(Path(spec).read_bytes()).hexdigest()
    else:
        digest = hashlib.sha256(to_onnx(graph).SerializeToString()).hexdigest()
    return graph, spec, digest


def optimize(graph: Graph, pipeline: str) -> Graph:
    """`graph` (changed in place) after the named preset (O0..O3) or TOML pipeline."""
    return run_pipeline(graph, load_pipeline(pipeline).steps()).graph


def optimize_for_precision(graph: Graph, precision: Precision | str, keep_fp32: Sequence[str] = (),
                           pipeline: str = "O3") -> Graph:
    """`graph` (changed in place) as the reference emulates a reduced-precision compile for this CPU: the
    pipeline's passes in float32, then convert-precision (`auto` resolved for this CPU), no target passes."""
    optimize(graph, pipeline)
    options = PrecisionOptions(resolve_precision(precision, host_cpu()), tuple(keep_fp32))
    return run_pipeline(graph, [Step("convert-precision", partial(convert_precision, options=options))]).graph


def target_pipeline(pipeline: str, target: TargetSpec, tuning_cache: str | os.PathLike | None = None,
                    precision: Precision | str = Precision.FP32, keep_fp32: Sequence[str] = ()) -> Pipeline:
    """The preset or TOML pipeline as a compile for `target` runs it: O3 gains the passes that choose
    each conv's algorithm and the layouts for the target, and every target-dependent pass gets the
    target's options; with `tuning_cache`, measured choices from that cache win over the cost model;
    a reduced `precision` converts the graph before kernels are chosen (selection.pipelines.for_target)."""
    chosen = for_target(load_pipeline(pipeline), target, precision, tuple(keep_fp32))
    if tuning_cache is not None:
        chosen = chosen.with_options("select-conv-algorithms", tuning_cache=os.fspath(tuning_cache))
    return chosen


def memory_limit_for(target: TargetSpec, limit: int | str | None = None) -> MemoryLimit:
    """`limit` (bytes, or a size as --memory-limit takes it) or, by default, the memory of the device
    that runs `target` here: this machine's available memory, or the visible GPU's. A CUDA model
    compiled where no GPU is visible has no default limit: nothing here says how much it will have."""
    if limit is not None or not target.is_gpu:
        return host_limit(limit)
    if gpu_visible():
        return MemoryLimit(gpu_memory(), "the memory of the visible GPU")
    return MemoryLimit(None, "no CUDA GPU is visible here to size the limit by")


def _silent(stage: Stage, done: int, total: int) -> None:
    """The progress callback when nobody is watching."""


def compile(model: Graph | str | os.PathLike, target: str | TargetSpec | None = None, pipeline: str = "O3",
            input_shapes: Mapping[str, Dims] | None = None, progress: Progress = _silent,
            tvm_default: bool = False, tuning: TuningOptions | None = None,
            memory_limit: int | str | None = None, precision: Precision | str = Precision.FP32,
            keep_fp32: Sequence[str] = ()) -> CompiledModel:
    """Compile an ONNX file, `zoo:NAME` or a Graph for `target` (the default: cuda if a GPU is visible, else llvm).

    `pipeline` is a preset (O0..O3) or a TOML pipeline file (cnncompile.passes); for O3 the
    target's passes follow (`target_pipeline`): each conv's algorithm, layout and tile by the
    cost model, recorded in the model's `choices`. A Graph argument is copied, never changed.
    `progress(stage, done, total)` is told how far each `Stage` (import, passes, lowering,
    build) has come. Named like tvm.compile, which it wraps.

    `tvm_default=True` skips our passes, lowerings and schedules and builds with TVM's own
    ONNX frontend and default pipeline instead (`pipeline` is then ignored; the model
    records "tvm-default"): the baseline to compare against, far slower on CPU.

    `tuning` (cnncompile.tuning) first measures the conv workloads the tuning cache lacks, as
    the pipeline leaves them, within its budget; the pipeline's choices then come from the cache.

    A model whose run would need more than `memory_limit` (`memory_limit_for`: by default the
    memory of the device that runs it) is refused before it is lowered, and again, with the
    kernels' workspace, before it is built (cnncompile.resources).

    `precision` (fp32, fp16, bf16, or auto: bf16 on a CPU with bf16 dot products, fp16 on CUDA)
    is what convs and matrix products compute from, accumulating in float32; `keep_fp32` names
    nodes to keep in float32 beside what the policy keeps (cnncompile.passes.precision).

    A list of sizes for an input's dim 0 in `input_shapes` (`{"images": ([1, 4, 16], 3, 64, 64)}`) builds
    batch buckets (cnncompile.buckets): one artifact that runs any batch up to the largest.
    """
    spec = parse_target(target)
    precision = resolve_precision(precision, spec)
    limit = memory_limit_for(spec, memory_limit)
    buckets = Buckets.of(input_shapes)
    if buckets is not None:
        if isinstance(model, Graph) or tvm_default:
            raise ModelError("batch buckets (a list of sizes in input_shapes) are built from an ONNX file or "
                             "zoo model by cnncompile's own pipeline: not from a Graph, whose shapes are fixed, "
                             "nor on TVM's default path")
        return _compile_buckets(os.fspath(model), buckets, input_shapes, spec, pipeline, progress, tuning,
                                limit, precision, keep_fp32)
    progress(Stage.IMPORT, 0, 1)
    graph, source, digest = _source(model, input_shapes)
    progress(Stage.IMPORT, 1, 1)
    doing = f"running {source}"
    if tvm_default:
        memory = estimate_memory(graph)
        limit.check(memory, doing)
        check_element_types(graph)
        check_indexable(graph)
        progress(Stage.BUILD, 0, 1)
        executable = build_default(to_onnx(graph), spec)
        progress(Stage.BUILD, 1, 1)
        return CompiledModel(executable, spec, Signature.of(graph), Provenance(source, digest, TVM_DEFAULT), graph,
                             memory=memory)
    progress(Stage.PASSES, 0, 1)
    run = _optimized(graph, pipeline, spec, tuning, precision, keep_fp32)
    optimized = run.graph
    progress(Stage.PASSES, 1, 1)
    limit.check(estimate_memory(optimized), doing)
    lowered = lower_graph(optimized, spec, lambda done, total: progress(Stage.LOWERING, done, total))
    memory = estimate_memory(optimized, {k.node: k.plan.workspace for k in lowered.kernels if k.plan is not None})
    limit.check(memory, doing)
    progress(Stage.BUILD, 0, 1)
    executable = build_module(lowered.module, spec)
    progress(Stage.BUILD, 1, 1)
    return CompiledModel(executable, spec, Signature.of(optimized),
                         Provenance(source, digest, pipeline, precision.value), optimized, lowered.kernels, choices=choices_of(run), memory=memory)


def _optimized(graph: Graph, pipeline: str, spec: TargetSpec, tuning: TuningOptions | None,
               precision: Precision, keep_fp32: Sequence[str]) -> PipelineRun:
    """The target's pipeline run on `graph` (in place), after measuring what `tuning` asks for."""
    steps = target_pipeline(pipeline, spec, None if tuning is None else tuning.cache_path, precision,
                            keep_fp32).steps()
    if tuning is not None and tuning.measure:
        tune_graph(run_pipeline(graph.copy(), target_pipeline(pipeline, spec, precision=precision,
                                                              keep_fp32=keep_fp32).steps()).graph, spec, tuning)
    return run_pipeline(graph, steps)


def _compile_buckets(source: str, buckets: Buckets, input_shapes: Mapping[str, Dims], spec: TargetSpec,
                     pipeline: str, progress: Progress, tuning: TuningOptions | None, limit: MemoryLimit,
                     precision: Precision, keep_fp32: Sequence[str]) -> CompiledModel:
    """One library with a Relax function per batch bucket (cnncompile.buckets), each the graph imported
    at that batch and optimized on its own; the model reports the largest bucket. A run allocates
    one bucket's activations at a time over constants they share, so the largest bounds the memory."""
    runs, digest = {}, ""
    for done, size in enumerate(buckets.sizes):
        progress(Stage.IMPORT, done, len(buckets.sizes))
        graph, _, digest = _source(source, buckets.shapes(input_shapes, size))
        progress(Stage.PASSES, done, len(buckets.sizes))
        runs[size] = _optimized(graph, pipeline, spec, tuning, precision, keep_fp32)
    progress(Stage.PASSES, len(buckets.sizes), len(buckets.sizes))
    check_batched_outputs(buckets, {size: {v.name: v.type.shape for v in run.graph.outputs}
                                    for size, run in runs.items()})
    largest = runs[buckets.largest].graph
    doing = f"running {source} at batch {buckets.largest}"
    limit.check(estimate_memory(largest), doing)
    module, kernels = lower_graphs({buckets.function(size): run.graph for size, run in runs.items()}, spec,
                                   lambda done, total: progress(Stage.LOWERING, done, total))
    memory = estimate_memory(largest, {k.node: k.plan.workspace for k in kernels[-1] if k.plan is not None})
    limit.check(memory, doing)
    progress(Stage.BUILD, 0, 1)
    executable = build_module(module, spec)
    progress(Stage.BUILD, 1, 1)
    return CompiledModel(executable, spec, Signature.of(largest), Provenance(source, digest, pipeline, precision.value),
                         largest, kernels[-1], choices=choices_of(runs[buckets.largest]), memory=memory,
                         buckets=buckets)


def load(directory: str | os.PathLike, memory_limit: int | str | None = None) -> CompiledModel:
    """A compiled model saved with `CompiledModel.save` or `cnncompile compile -o DIR`, refused before its
    library is loaded when the memory its manifest estimates passes `memory_limit` (as for `compile`)."""
    return load_compiled(directory, lambda target: memory_limit_for(target, memory_limit))
