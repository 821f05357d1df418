"""The `cnncompile` command line.

Every command that takes a model accepts an ONNX path or zoo:NAME; `--json` prints one
JSON object.
A cnncompile error is printed as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from cnncompile.errors import CnnCompileError


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an ONNX file, or zoo:NAME for a model of the zoo (e.g. zoo:resnet50)")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD...",
                        help="bind an input's shape (dynamic dims), e.g. data=1x3x224x224; repeatable")


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
    from cnncompile.tools.models import load_inputs, random_inputs

    graph = _graph(args)
    inputs = random_inputs(graph, args.seed) if args.random_inputs else load_inputs(graph, args.input)
    return run_reference(graph, inputs, dtype=DType(args.dtype))


def _run_artifact(args: argparse.Namespace):
    """Inputs are used as they are: a compiled model refuses a wrong dtype rather than converting it."""
    import numpy as np

    from cnncompile.api import load

    if args.input_shape:
        raise CnnCompileError(f"'{args.model}' is compiled: its input shapes are fixed; drop --input-shape "
                              "or recompile with it")
    model = load(args.model)
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
                              _tuning(args))
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
                          "nodes": len(model.graph.nodes), "kernels": kernels, "seconds": round(seconds, 3),
                          **explained}))
    else:
        built = f"{len(model.graph.nodes)} nodes" + ("" if kernels is None else f", {kernels} distinct kernels")
        label = pipeline if args.tvm_default else f"-p {pipeline}"
        if args.explain:
            print(format_choices(model.choices, model.kernels))
        print(f"compiled {args.model} for {model.target} ({label}): {built} in {seconds:.1f} s -> {path}")
    return 0


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
    from cnncompile.tools.models import load_inputs
    from cnncompile.tools.validate import validate

    _announce_target(args)
    graph = _graph(args)
    inputs = load_inputs(graph, args.input) if args.input else None
    result = validate(graph, args.target, args.pipeline, inputs, args.seed)
    print(json.dumps(result.as_dict()) if args.json else result.report())
    return 0 if result.passed else 1


def _add_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", metavar="cuda|llvm[:ARCH]",
                        help="cuda (sm_80 unless cuda:sm_XX) or llvm (this CPU unless llvm:CPU); "
                             "default: cuda if a GPU is visible, else llvm")
    parser.add_argument("-p", "--pipeline", default="O3", metavar="O0..O3|FILE.toml",
                        help="pass pipeline: a preset or a TOML file (default O3)")


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
    from cnncompile.selection.pipelines import for_target, load_pipeline
    from cnncompile.tools.compare import compare, format_comparison
    from cnncompile.tools.report import write_html

    pipelines = [load_pipeline(spec) for spec in args.pipelines or ["O0", "O1", "O2", "O3"]]
    graph = _graph(args)

    def dump(pipeline: str, pass_name: str, optimized) -> None:
        print(f"// {pipeline}: IR after {pass_name}\n{optimized}", file=sys.stderr)

    backend = {}
    if args.target:
        from cnncompile.api import compile as compile_model
        from cnncompile.backends.tvm.target import parse_target

        # Each pipeline as a compile for the target runs it (O3 with the target's algorithm and
        # layout passes); each graph then arrives optimized: O0 only lowers and builds it.
        pipelines = [for_target(p, parse_target(args.target)) for p in pipelines]
        backend = {"backend": lambda optimized: compile_model(optimized, args.target, "O0").run,
                   "backend_name": f"TVM ({args.target})"}
    comparison = compare(args.model, graph, pipelines, runs=args.runs, seed=args.seed, verify=args.verify,
                         dump_after=args.dump_after, dump=dump, check_each_pass=args.check_each_pass, **backend)
    if args.html:
        write_html(args.html, comparison)
    diverged = [(r.pipeline, r.run.first_divergence) for r in comparison.results if r.run.first_divergence]
    if args.json:
        print(json.dumps({**comparison.as_dict(), "html": args.html}))
    else:
        print(format_comparison(comparison))
        if args.explain or args.check_each_pass:
            for result in comparison.results:
                print(f"\n{result.pipeline}:\n{result.run.report()}")
                if args.explain:
                    for record in result.run.records:
                        print("".join(f"  {record.name}: {rejection}\n" for rejection in record.log.rejections), end="")
        if args.html:
            print(f"report written to {args.html}")
    for pipeline, record in diverged:
        print(f"cnncompile: pipeline {pipeline}: pass '{record.name}' moved the float64 outputs by "
              f"{record.error:.2e} (tolerance {comparison.results[0].run.tolerance:g})", file=sys.stderr)
    return 1 if diverged else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnncompile", description="A declarative graph compiler for CNNs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", help="per-layer shapes, memory, parameters, multiply-adds and receptive fields of a model",
        description="One row per layer: output shape, activation memory, parameters, multiply-adds and "
                    "receptive field, then the totals. Long tables go through $PAGER (less) on a terminal.")
    _add_model_args(inspect)
    inspect.add_argument("--ir", action="store_true", help="print the imported IR instead of the table")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--no-pager", action="store_true", help="never page, even on a terminal")
    inspect.set_defaults(handler=cmd_inspect)

    run = commands.add_parser("run", help="run a compiled artifact directory, or a model on the NumPy reference")
    _add_model_args(run)
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="an input array; repeatable")
    run.add_argument("--random-inputs", action="store_true", help="draw standard-normal inputs instead")
    run.add_argument("--seed", type=int, default=0, help="seed for --random-inputs")
    run.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="compute precision")
    run.add_argument("--output", metavar="FILE.npz", help="save the outputs (written atomically)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(handler=cmd_run)

    compile_ = commands.add_parser("compile", help="compile a model with TVM into a deployable artifact directory",
                                   description="Import, optimize (-p), lower every node to a scheduled TVM kernel "
                                               "and build; writes DIR/model.so, DIR/manifest.json and "
                                               "DIR/model.onnx atomically.")
    _add_model_args(compile_)
    _add_target_args(compile_)
    compile_.add_argument("-o", "--output", required=True, metavar="DIR", help="the artifact directory to write")
    compile_.add_argument("--tvm-default", action="store_true",
                          help="for comparison: build with TVM's relax ONNX frontend and default pipeline instead "
                               "of cnncompile's passes and schedules (-p is ignored; slow on CPU)")
    compile_.add_argument("--explain", action="store_true",
                          help="print, per conv, the chosen algorithm, layout and tile, whether the cost model or a "
                               "measurement chose it, every alternative's estimated or measured time, and why the "
                               "other algorithms do not apply (with --json: a 'choices' list)")
    tune = compile_.add_argument_group("tuning (measured choice of each conv's algorithm, layout and tile)")
    tune.add_argument("--tune", action="store_true",
                      help="measure the candidates of every conv workload the tuning cache lacks, store them, and "
                           "compile with the fastest (shows progress and an ETA on a terminal)")
    tune.add_argument("--tune-budget", metavar="DURATION",
                      help="time limit for --tune, e.g. 90s, 10m, 1h (default 10m); workloads not reached keep "
                           "the cost model's choice")
    tune.add_argument("--tuning-cache", metavar="FILE",
                      help="the tuning cache (default ~/.cache/cnncompile/tuning.json, under $XDG_CACHE_HOME if "
                           "set); without --tune, compile with its measurements, measuring nothing")
    tune.add_argument("--rpc", metavar="HOST:PORT",
                      help="with --tune: measure on the devices registered with this TVM RPC tracker, in parallel")
    tune.add_argument("--key", metavar="NAME", help="with --rpc: the key the RPC servers registered under")
    compile_.add_argument("--json", action="store_true", help="print one JSON object")
    compile_.set_defaults(handler=cmd_compile)

    validate = commands.add_parser(
        "validate", help="compile a model and check it against the float64 reference (exit 1 on failure)",
        description="Compares the compiled model's outputs with the float64 reference on random inputs (or "
                    "--input files). Beyond the tolerance end to end (float32's, or the looser one of a Winograd or FFT "
                    "conv in the build), every node is re-run on its gold inputs and judged on its own, by its "
                    "algorithm's tolerance; the first node that fails is named.")
    _add_model_args(validate)
    _add_target_args(validate)
    validate.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                          help="an input array instead of random ones; repeatable")
    validate.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    validate.add_argument("--json", action="store_true", help="print one JSON object")
    validate.set_defaults(handler=cmd_validate)

    ops = commands.add_parser("ops", help="list every registered op")
    ops.add_argument("--json", action="store_true", help="print one JSON object")
    ops.set_defaults(handler=cmd_ops)

    demo = commands.add_parser("demo", help="compile the zoo ResNet-50 for the default target, validate it, time it")
    demo.add_argument("--seed", type=int, default=0, help="seed for weights and inputs")
    demo.set_defaults(handler=cmd_demo)
    passes = commands.add_parser("passes", help="list every pass with a one-line description, and the presets")
    passes.add_argument("--json", action="store_true", help="print one JSON object (with each pass's options)")
    passes.set_defaults(handler=cmd_passes)

    compare = commands.add_parser(
        "compare", help="optimize a model with several pipelines and compare them side by side",
        description="For each pipeline: nodes, fused nodes, parameters, FLOPs, peak activation memory, compile "
                    "time, latency on the reference backend (median of --runs, with min and max) and error "
                    "against the float64 reference.")
    _add_model_args(compare)
    compare.add_argument("-p", "--pipeline", action="append", dest="pipelines", metavar="O0..O3|FILE.toml",
                         help="a preset or a TOML pipeline file; repeatable (default: O0 O1 O2 O3)")
    compare.add_argument("--runs", type=int, default=5, help="timed runs per pipeline (default 5)")
    compare.add_argument("--target", metavar="llvm|cuda[:sm_XX]",
                         help="time each pipeline's graph compiled by TVM for this target (default: the reference)")
    compare.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.add_argument("--html", metavar="REPORT.html", help="also write a self-contained HTML report")
    compare.add_argument("--verify", action="store_true", help="run the IR verifier after every pass")
    compare.add_argument("--dump-after", action="append", default=[], metavar="PASS",
                         help="print the IR after this pass to stderr; repeatable")
    compare.add_argument("--check-each-pass", action="store_true",
                         help="run the float64 reference after every pass and name the first pass that changes "
                              "the outputs (exit status 1)")
    compare.add_argument("--explain", action="store_true",
                         help="print each pass's record and why rules declined to fire")
    compare.set_defaults(handler=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CnnCompileError as err:
        print(f"cnncompile: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnncompile: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as git does, and keep Python's
        # exit-time flush of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
