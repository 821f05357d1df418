"""What each `cnncompile` command does, given its parsed arguments; the parser and the error
handling around every command are in cli/__init__.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from cnncompile.errors import CnnCompileError
from cnncompile.passes.precision import Precision


def _graph(args: argparse.Namespace, **options):
    from cnncompile.frontends.load import load_model
    from cnncompile.tools.models import parse_input_shape

    return load_model(args.model, dict(parse_input_shape(s) for s in args.input_shape), **options)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Counting needs shapes only, so zoo models are built with placeholder weights (no random draws)."""
    from cnncompile.frontends.dsl import Weights
    from cnncompile.tools.inspect import format_table, summarize
    from cnncompile.tools.pager import page

    graph = _graph(args, weights=Weights.PLACEHOLDER)
    if args.json:
        print(json.dumps({**summarize(graph).as_dict(), "model": args.model}))
        return 0
    text = str(graph) if args.ir else format_table(summarize(graph))
    if args.no_pager:
        print(text)
    else:
        page(text)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """A compiled artifact directory runs on TVM; anything else (an ONNX file, zoo:NAME) on the reference."""
    from cnncompile.backends.tvm.artifact import is_artifact
    from cnncompile.fileio import save_arrays

    outputs = _run_artifact(args) if is_artifact(args.model) else _run_reference(args)
    if args.output:
        save_arrays(args.output, outputs)
    summary = {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in outputs.items()}
    if args.json:
        print(json.dumps({"outputs": summary, "saved_to": args.output}))
    else:
        for name, info in summary.items():
            print(f"{name}: {info['dtype']}{info['shape']}")
        if args.output:
            print(f"saved to {args.output}")
    return 0


def _run_reference(args: argparse.Namespace):
    from cnncompile.backends.reference import run_reference
    from cnncompile.ir.types import DType
    from cnncompile.resources import estimate_memory, host_limit
    from cnncompile.tools.models import load_inputs, random_inputs

    graph = _reduced(_graph(args), args)
    dtype = DType(args.dtype)
    host_limit(args.memory_limit).check(estimate_memory(graph, compute=dtype),
                                        f"running {args.model} on the NumPy reference in {dtype.value}")
    inputs = random_inputs(graph, args.seed) if args.random_inputs else load_inputs(graph, args.input)
    return run_reference(graph, inputs, dtype=dtype)


def _reduced(graph, args: argparse.Namespace):
    """The graph as a reduced --precision computes it, after the pipeline a compile runs before converting
    (O3's folds and fusions in float32), for this CPU (what `auto` is resolved against)."""
    if args.precision == "fp32" and not args.keep_fp32:
        return graph
    from cnncompile.api import optimize_for_precision

    return optimize_for_precision(graph, args.precision, keep_fp32(args))


def _run_artifact(args: argparse.Namespace):
    """Inputs are used as they are: a compiled model refuses a wrong dtype rather than converting it."""
    import numpy as np

    from cnncompile.api import load

    if args.input_shape:
        raise CnnCompileError(f"'{args.model}' is compiled: its input shapes are fixed; drop --input-shape "
                              "or recompile with it")
    if args.precision != "fp32" or args.keep_fp32:
        raise CnnCompileError(f"'{args.model}' is compiled: its precision is fixed (the manifest records it); drop "
                              "--precision/--keep-fp32 or recompile with them")
    model = load(args.model, args.memory_limit)
    if args.random_inputs:
        rng = np.random.default_rng(args.seed)
        inputs = {s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in model.inputs}
    else:
        inputs = dict(_read_array(spec) for spec in args.input)
    return model.run(inputs)


def _read_array(spec: str):
    import numpy as np

    from cnncompile.errors import ModelError

    name, sep, path = spec.partition("=")
    if not sep:
        raise CnnCompileError(f"--input '{spec}' is not NAME=FILE.npy")
    try:
        return name, np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read input '{name}' from '{path}': {err}") from None


def _announce_target(args: argparse.Namespace) -> None:
    """Say which target an omitted --target means here (one line, to stderr under --json)."""
    if args.target is None:
        from cnncompile.api import describe_default_target

        print(describe_default_target(), file=sys.stderr if args.json else sys.stdout)


def cmd_compile(args: argparse.Namespace) -> int:
    import time

    from cnncompile.api import compile as compile_model
    from cnncompile.selection.explain import choices_as_json, format_choices
    from cnncompile.tools.models import parse_input_shape
    from cnncompile.tools.progress import ProgressBar

    _announce_target(args)
    progress = ProgressBar()
    start = time.perf_counter()
    try:
        model = compile_model(args.model, args.target, args.pipeline,
                              dict(parse_input_shape(s) for s in args.input_shape), progress, args.tvm_default,
                              _tuning(args), args.memory_limit, args.precision, keep_fp32(args))
    finally:
        progress.close()
    path = model.save(args.output)
    seconds = time.perf_counter() - start
    pipeline = model.provenance.pipeline
    # TVM's default path fuses and names its own kernels; only ours are counted
    kernels = None if model.kernels is None else len({k.symbol for k in model.kernels})
    if args.json:
        explained = {"choices": choices_as_json(model.choices, model.kernels)} if args.explain else {}
        print(json.dumps({"artifact": str(path), "target": str(model.target), "pipeline": pipeline,
                          "precision": model.provenance.precision,
                          "nodes": len(model.graph.nodes), "kernels": kernels, "seconds": round(seconds, 3),
                          **({} if model.buckets is None else {"batch_buckets": list(model.buckets.sizes)}),
                          **explained}))
    else:
        built = f"{len(model.graph.nodes)} nodes" + ("" if kernels is None else f", {kernels} distinct kernels")
        if model.buckets is not None:
            built += f" at batch {model.buckets.largest} (batch buckets {', '.join(map(str, model.buckets.sizes))})"
        label = pipeline if args.tvm_default else f"-p {pipeline}, {model.provenance.precision}"
        if args.explain:
            print(format_choices(model.choices, model.kernels))
        print(f"compiled {args.model} for {model.target} ({label}): {built} in {seconds:.1f} s -> {path}")
    return 0


def keep_fp32(args: argparse.Namespace) -> tuple[str, ...]:
    """--keep-fp32's node names, however the user split them (commas, repeats)."""
    names = tuple(n.strip() for given in args.keep_fp32 for n in given.split(",") if n.strip())
    if names and args.precision == "fp32":
        raise CnnCompileError("--keep-fp32 keeps nodes in float32 when the rest is reduced: add --precision "
                              "fp16, bf16 or auto")
    return names


def _tuning(args: argparse.Namespace):
    """The TuningOptions of compile's flags: --tune measures (then uses the cache), --tuning-cache alone only reads it."""
    if not (args.tune or args.tuning_cache or args.rpc or args.key or args.tune_budget):
        return None
    if not args.tune and (args.rpc or args.key or args.tune_budget):
        raise CnnCompileError("--rpc, --key and --tune-budget only apply with --tune")
    from cnncompile.tuning.budget import DEFAULT_BUDGET_SECONDS, parse_duration
    from cnncompile.tools.progress import TuneBar
    from cnncompile.tuning.rpc import Tracker
    from cnncompile.tuning.tuner import TuningOptions

    if not args.tune and not os.path.exists(args.tuning_cache):
        raise CnnCompileError(f"--tuning-cache '{args.tuning_cache}' does not exist; add --tune to measure into it")
    if args.key and not args.rpc:
        raise CnnCompileError("--key names the devices of an RPC tracker: give the tracker with --rpc HOST:PORT")
    budget = parse_duration(args.tune_budget) if args.tune_budget else DEFAULT_BUDGET_SECONDS
    rpc = Tracker.parse(args.rpc, args.key) if args.rpc else None
    return TuningOptions(args.tuning_cache, bool(args.tune), budget, rpc, TuneBar())


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit status 0 when the compiled model is within tolerance, 1 when it is not."""
    import onnx

    from cnncompile.frontends.load import ZOO_PREFIX
    from cnncompile.tools.validate import ValidateOptions, validate
    from cnncompile.tools.versus import Peer

    if args.tolerance is not None and not args.tolerance > 0:
        raise CnnCompileError(f"--tolerance {args.tolerance:g}: give a positive bound, e.g. --tolerance 1e-6")
    if (args.blame or args.determinism) and args.load_outputs:
        raise CnnCompileError("--blame and --determinism rebuild and rerun the model on the inputs it is validated "
                              "on, which --load-outputs replays from another run: drop one of them")
    options = ValidateOptions(args.target, args.pipeline, args.precision, keep_fp32(args), Peer.parse(args.vs),
                              args.per_layer, args.tolerance, args.memory_limit, args.save_outputs,
                              args.load_outputs)
    _announce_target(args)
    graph = _graph(args)
    given = args.input or args.inputs or args.images
    sets = _input_sets(args, graph) if given or not args.load_outputs else None
    # An ONNX file goes to onnxruntime and OpenVINO as it is; a zoo model as the exporter writes it.
    onnx_model = None if args.model.startswith(ZOO_PREFIX) or args.input_shape else lambda: onnx.load(args.model)
    result = validate(graph, options, sets, onnx_model, args.model)
    findings = _findings(args, graph, options, sets, result)
    if args.html:
        from cnncompile.tools.report_validate import write_validation_html

        write_validation_html(args.html, args.model, graph, result, options, sets[0] if sets else None)
    found = {name: f.as_dict() for name, f in findings.items()}
    print(json.dumps({**result.as_dict(), **found, **({"html": args.html} if args.html else {})}) if args.json
          else "\n".join([result.report(), *(f.report() for f in findings.values())])
          + (f"\nreport written to {args.html}" if args.html else ""))
    repeats = findings.get("determinism")
    return 0 if result.passed and (repeats is None or repeats.passed) else 1


def _findings(args: argparse.Namespace, graph, options, sets, result) -> dict:
    """What --blame (why the build fails, if it does) and --determinism (whether it repeats itself) found,
    by the key --json gives each; the validation's verdict stands, and a determinism check failing fails too."""
    findings = {}
    if args.blame:
        from cnncompile.tools.blame import blame

        findings["blame"] = blame(graph, options, sets, result)
    if args.determinism:
        from cnncompile.tools.determinism import determinism

        findings["determinism"] = determinism(graph, options, sets[0])
    return findings


def _input_sets(args: argparse.Namespace, graph):
    from cnncompile.tools.images import parse_resize
    from cnncompile.tools.inputs import Distribution, InputOptions, Normalization, floats, gather, input_specs

    normalization = Normalization(floats(args.mean, "--mean"), floats(args.std, "--std"), args.pixel_max)
    options = InputOptions(Distribution.parse(args.distribution), normalization, args.count, args.seed,
                           tuple(args.input), args.inputs, args.images,
                           parse_resize(args.resize) if args.resize else None)
    return gather(input_specs(graph), options)


def cmd_ops(args: argparse.Namespace) -> int:
    from cnncompile.ops import REGISTRY

    if args.json:
        print(json.dumps({name: op.doc for name, op in sorted(REGISTRY.items())}))
    else:
        width = max(map(len, REGISTRY))
        for name, op in sorted(REGISTRY.items()):
            print(f"{name:<{width}}  {op.doc}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cnncompile.tools.demo import run_demo

    report, passed = run_demo(seed=args.seed)
    print(report)
    return 0 if passed else 1


def cmd_passes(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from cnncompile.passes import PRESETS
    from cnncompile.selection.pipelines import CATALOG, TARGET_PASSES

    if args.json:
        passes = {name: {"description": info.description, "options": asdict(info.options()) if info.options else {}}
                  for name, info in CATALOG.items()}
        # option defaults hold enums (activations), written as their values
        targets = {name: [{"name": p.name, "options": dict(p.options)} for p in specs]
                   for name, specs in TARGET_PASSES.items()}
        print(json.dumps({"passes": passes, "presets": PRESETS, "target_passes": targets},
                         default=lambda member: member.value))
        return 0
    width = max(map(len, CATALOG))
    for name, info in CATALOG.items():
        print(f"{name:<{width}}  {info.description}")
    print("\npresets:")
    for name, passes in PRESETS.items():
        targeted = f"; compiled for a target, then {', '.join(map(str, TARGET_PASSES[name]))}" \
            if name in TARGET_PASSES else ""
        print(f"  {name}  {', '.join(passes) or '(import only)'}{targeted}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Exit status 1 when --check-each-pass finds a pass that moved the float64 outputs beyond tolerance."""
    from cnncompile.ir.types import DType
    from cnncompile.resources import estimate_memory, host_limit
    from cnncompile.selection.pipelines import load_pipeline
    from cnncompile.tools.compare import Backend, BackendKind, compare, format_comparison
    from cnncompile.tools.report_compare import measure_builds, write_html

    if args.time_reference and args.target:
        raise CnnCompileError("--time-reference times the NumPy reference, which has no --target: drop one of them")
    pipelines = [load_pipeline(spec) for spec in args.pipelines or ["O0", "O1", "O2", "O3"]]
    precisions = _precisions(args.precisions or ["fp32"])
    graph = _graph(args)
    host_limit(args.memory_limit).check(estimate_memory(graph, compute=DType.FLOAT64),
                                        f"running {args.model} on the float64 reference")

    def dump(pipeline: str, pass_name: str, optimized) -> None:
        print(f"// {pipeline}: IR after {pass_name}\n{optimized}", file=sys.stderr)

    kind = BackendKind.REFERENCE if args.time_reference else BackendKind.TVM
    comparison = compare(args.model, graph, pipelines, precisions=precisions, runs=args.runs, seed=args.seed,
                         verify=args.verify, dump_after=args.dump_after, dump=dump,
                         check_each_pass=args.check_each_pass, backend=Backend(kind, args.target, args.memory_limit))
    if args.html:
        write_html(args.html, comparison, measure_builds(comparison))
    diverged = [(r.label, r.run.first_divergence) for r in comparison.results if r.run.first_divergence]
    if args.json:
        print(json.dumps({**comparison.as_dict(), "html": args.html}))
    else:
        print(format_comparison(comparison))
        if args.explain or args.check_each_pass:
            for result in comparison.results:
                print(f"\n{result.label}:\n{result.run.report()}")
                if args.explain:
                    for record in result.run.records:
                        print("".join(f"  {record.name}: {rejection}\n" for rejection in record.log.rejections), end="")
        if args.html:
            print(f"report written to {args.html}")
    for label, record in diverged:
        print(f"cnncompile: pipeline {label}: pass '{record.name}' moved the float64 outputs by "
              f"{record.error:.2e} (tolerance {comparison.results[0].run.tolerance:g})", file=sys.stderr)
    return 1 if diverged else 0


def _precisions(given: list[str]) -> list[Precision]:
    """compare's --precision values, split at commas, each a Precision."""
    names = [n.strip() for spec in given for n in spec.split(",") if n.strip()]
    known = [p.value for p in Precision]
    for name in names:
        if name not in known:
            raise CnnCompileError(f"--precision '{name}' is not one of {', '.join(known)}; e.g. --precision fp32,bf16")
    if not names:
        raise CnnCompileError("--precision needs a value: one or more of fp32, fp16, bf16, auto, e.g. fp32,bf16")
    return [Precision(n) for n in names]
