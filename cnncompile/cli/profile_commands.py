"""The `profile` and `show` commands: their subparsers and what each does.

`register(commands)` adds both to the subparsers object that cli/__init__.py's build_parser
creates, so the parser and its error handling (one line, exit 2) stay in one place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnncompile.errors import CnnCompileError


def register(commands: argparse._SubParsersAction) -> None:
    """Add `profile` and `show` to the command line."""
    from cnncompile.cli import _add_memory_arg, _add_model_args, _add_precision_args, _add_target_args

    profile = commands.add_parser(
        "profile", help="time every kernel of a compiled model against the target's peak",
        description="MODEL (an ONNX file or zoo:NAME, compiled here with -p and --target) or DIR (a saved "
                    "artifact): each distinct kernel timed alone with TVM's time evaluator and counted once per "
                    "call, its share of the sum, achieved GFLOP/s and GB/s against the cost model's nominal peaks "
                    "for the target, slowest first, and the end-to-end latency on the Relax VM beside the sum.")
    _add_model_args(profile)
    _add_target_args(profile)
    _add_precision_args(profile)
    profile.add_argument("--repeat", type=int, default=5, help="timed runs per kernel; the median counts (default 5)")
    profile.add_argument("--min-repeat-ms", type=int, default=10,
                         help="each run repeats the kernel for at least this long (default 10)")
    profile.add_argument("--seed", type=int, default=0, help="seed for the kernels' buffer contents")
    profile.add_argument("--json", action="store_true", help="print one JSON object")
    profile.add_argument("--html", metavar="REPORT.html", help="also write a self-contained HTML report")
    _add_memory_arg(profile)
    profile.set_defaults(handler=cmd_profile)

    show = commands.add_parser("show", help="draw a model's graph as SVG, as imported or after a pipeline",
                               description="The graph as imported, or after -p (a compile's passes for --target "
                                           "as well when it is given), as one self-contained SVG; fused nodes are "
                                           "outlined and list the original ops they stand for.")
    _add_model_args(show)
    show.add_argument("-p", "--pipeline", metavar="O0..O3|FILE.toml", help="the pass pipeline to run first")
    show.add_argument("--target", metavar="cuda|llvm[:ARCH]",
                      help="with -p: run the pipeline as a compile for this target does (its layout and "
                           "algorithm passes too)")
    show.add_argument("-o", "--output", required=True, metavar="FILE.svg", help="the SVG file to write (atomically)")
    show.set_defaults(handler=cmd_show)


def _compiled(args: argparse.Namespace):
    """The artifact at DIR, or MODEL compiled here as `compile` would (the target announced on stderr)."""
    from cnncompile.api import compile as compile_model, describe_default_target, load
    from cnncompile.backends.tvm.artifact import is_artifact
    from cnncompile.cli.commands import keep_fp32
    from cnncompile.tools.models import parse_input_shape

    if is_artifact(args.model):
        if args.input_shape or args.target or args.precision != "fp32" or args.keep_fp32:
            raise CnnCompileError(f"'{args.model}' is compiled: its shapes, target and precision are fixed; drop "
                                  "--input-shape/--target/--precision/--keep-fp32 or profile the model instead")
        return load(args.model, args.memory_limit)
    if Path(args.model).is_dir():
        raise CnnCompileError(f"'{args.model}' is a directory but no cnncompile artifact (it has no manifest.json): "
                              "give an artifact (`cnncompile compile -o DIR`), an ONNX file or zoo:NAME")
    if args.target is None:
        print(describe_default_target(), file=sys.stderr)
    return compile_model(args.model, args.target, args.pipeline, dict(parse_input_shape(s) for s in args.input_shape),
                         memory_limit=args.memory_limit, precision=args.precision, keep_fp32=keep_fp32(args))


def cmd_profile(args: argparse.Namespace) -> int:
    from cnncompile.tools.profile import format_profile, profile
    from cnncompile.tools.profile_report import write_html

    model = _compiled(args)
    result = profile(model, args.model, args.repeat, args.min_repeat_ms, args.seed)
    if args.html:
        write_html(args.html, result, model.graph)
    if args.json:
        print(json.dumps({**result.as_dict(), "html": args.html}))
    else:
        print(format_profile(result))
        if args.html:
            print(f"report written to {args.html}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from cnncompile.frontends.load import load_model
    from cnncompile.tools.models import parse_input_shape
    from cnncompile.tools.show import show, svg_path

    svg_path(args.output)  # refused before the model is loaded and optimized
    if args.target and not args.pipeline:
        raise CnnCompileError("--target says how -p runs: add -p O3 (or another pipeline)")
    graph = load_model(args.model, dict(parse_input_shape(s) for s in args.input_shape))
    if args.pipeline:
        from cnncompile.api import target_pipeline
        from cnncompile.backends.tvm.target import parse_target
        from cnncompile.passes import run_pipeline
        from cnncompile.selection.pipelines import load_pipeline

        steps = (target_pipeline(args.pipeline, parse_target(args.target)) if args.target
                 else load_pipeline(args.pipeline)).steps()
        graph = run_pipeline(graph, steps).graph
    path = show(graph, args.output)
    print(f"{len(graph.nodes)} nodes drawn to {path}")
    return 0
