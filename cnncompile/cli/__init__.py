"""The `cnncompile` command line.

Every command that takes a model accepts an ONNX path or zoo:NAME; `--json` prints one
JSON object.
A cnncompile error is printed as one line on stderr with exit code 2, never a traceback.
This module is the parser and that handling; each command's work is in commands.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cnncompile.cli import profile_commands
from cnncompile.cli.commands import (
    cmd_compare, cmd_compile, cmd_demo, cmd_inspect, cmd_ops, cmd_passes, cmd_run, cmd_validate,
)
from cnncompile.errors import CnnCompileError
from cnncompile.passes.precision import Precision
from cnncompile.tools.signals import describe, exit_status, termination_as_interrupt


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an ONNX file, or zoo:NAME for a model of the zoo (e.g. zoo:resnet50)")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD...",
                        help="bind an input's shape (dynamic dims), e.g. data=1x3x224x224; repeatable; for "
                             "compile, dim 0 may list batch buckets: data=1,4,16x3x224x224")


def _add_memory_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-limit", metavar="SIZE",
                        help="refuse a model whose run needs more memory than this, e.g. 16G, 1.5T, or 'none' "
                             "(default: the memory available here, or the visible GPU's)")


def _add_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", metavar="cuda|llvm[:ARCH]",
                        help="cuda (sm_80 unless cuda:sm_XX) or llvm (this CPU unless llvm:CPU); "
                             "default: cuda if a GPU is visible, else llvm")
    parser.add_argument("-p", "--pipeline", default="O3", metavar="O0..O3|FILE.toml",
                        help="pass pipeline: a preset or a TOML file (default O3)")


def _add_precision_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=[p.value for p in Precision], default=Precision.FP32.value,
                        help="what convs and matrix products compute from, accumulating in float32: fp32 (default), "
                             "fp16, bf16, or auto (bf16 on a CPU with bf16 dot products, fp16 on CUDA, else fp32)")
    parser.add_argument("--keep-fp32", action="append", default=[], metavar="NODE,...",
                        help="with a reduced --precision: nodes (as `inspect --ir` names them) kept in float32; "
                             "repeatable")


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
    run.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="what the reference computes in (a reduced --precision's 16-bit values are rounded on store)")
    _add_precision_args(run)
    run.add_argument("--output", metavar="FILE.npz", help="save the outputs (written atomically)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    _add_memory_arg(run)
    run.set_defaults(handler=cmd_run)

    compile_ = commands.add_parser("compile", help="compile a model with TVM into a deployable artifact directory",
                                   description="Import, optimize (-p), lower every node to a scheduled TVM kernel "
                                               "and build; writes DIR/model.so, DIR/manifest.json and "
                                               "DIR/model.onnx atomically.")
    _add_model_args(compile_)
    _add_target_args(compile_)
    _add_precision_args(compile_)
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
    _add_memory_arg(compile_)
    compile_.set_defaults(handler=cmd_compile)

    validate = commands.add_parser(
        "validate", help="compile a model and check it against the float64 reference or a peer (exit 1 on failure)",
        description="Compares the compiled model's outputs with a peer (--vs: the float64 reference by default) on "
                    "the same inputs. Beyond the tolerance end to end (float32's, or the looser one of a Winograd or "
                    "FFT conv in the build), or with --per-layer, every compiled node is re-run on its gold float64 "
                    "inputs and judged against the error its element type and reduction length predict; the first "
                    "layer out of proportion is named by its ONNX value.")
    _add_model_args(validate)
    _add_target_args(validate)
    _add_precision_args(validate)
    validate.add_argument("--vs", default="reference", metavar="reference|reference32|onnxruntime|openvino|DIR",
                          help="what to compare with: the float64 or float32 reference, onnxruntime, OpenVINO (CPU, "
                               "f32 unless --precision), or a compiled artifact directory (default reference)")
    validate.add_argument("--per-layer", action="store_true",
                          help="compare every compiled node's outputs with the reference's value of the ONNX value "
                               "it computes (fusions kept), with max abs/rel error, cosine, a histogram and a bound")
    validate.add_argument("--tolerance", type=float, metavar="X",
                          help="hold the end-to-end error to X instead of the build's tolerance (no layer-by-layer "
                               "rescue)")
    validate.add_argument("--save-outputs", metavar="FILE.npz",
                          help="save the inputs and the compiled outputs, to compare with on another machine")
    validate.add_argument("--load-outputs", metavar="FILE.npz",
                          help="compare with outputs --save-outputs wrote, on the inputs saved with them")
    validate.add_argument("--blame", action="store_true",
                          help="when the build fails, name the pass (pipeline bisected) or the conv choice (each "
                               "reverted to direct/NCHW/default tile/fp32) at fault, by ONNX name; with a reduced "
                               "--precision, the fewest layers to keep in fp32 to pass, as a --keep-fp32 line")
    validate.add_argument("--determinism", action="store_true",
                          help="also check that two compiles give byte-identical artifacts, repeated runs "
                               "bit-identical outputs, and a batch of identical rows identical output rows (exit 1 "
                               "when one fails)")
    sources = validate.add_argument_group("inputs (one source; seeded random by default)")
    sources.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                         help="an input array; repeatable")
    sources.add_argument("--inputs", metavar="FILE.npz", help="arrays by input name, optionally stacked over sets")
    sources.add_argument("--images", metavar="DIR", help="a folder of pictures, one per set (per batch of N)")
    sources.add_argument("--resize", metavar="HxW", help="with --images: resize each picture to HxW first")
    sources.add_argument("--mean", default="0", metavar="M[,M,M]",
                         help="pixels (--images, --distribution image) minus this, per channel or one for all")
    sources.add_argument("--std", default="1", metavar="S[,S,S]", help="... then divided by this")
    sources.add_argument("--pixel-max", type=float, default=255.0, metavar="P",
                         help="pixels are scaled from 0..255 to 0..P before --mean/--std (default 255)")
    sources.add_argument("--distribution", default="normal", metavar="normal[:M,S]|uniform[:LO,HI]|image",
                         help="what random inputs are drawn from (default normal:0,1)")
    sources.add_argument("--count", type=int, default=1, help="how many random input sets (default 1)")
    sources.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    validate.add_argument("--json", action="store_true", help="print one JSON object")
    validate.add_argument("--html", metavar="REPORT.html",
                          help="also write a self-contained HTML report: the graph before and after (nodes coloured "
                               "by their error), error and latency per layer, the passes")
    _add_memory_arg(validate)
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
        "compare", help="compile a model with several pipelines and precisions and compare the builds side by side",
        description="For each build (every pipeline in every precision, compiled by TVM): nodes, fused nodes, "
                    "parameters, FLOPs, peak activation memory, compile time, latency (median of --runs, with "
                    "min and max) and error against the float64 reference.")
    _add_model_args(compare)
    compare.add_argument("-p", "--pipeline", action="append", dest="pipelines", metavar="O0..O3|FILE.toml",
                         help="a preset or a TOML pipeline file; repeatable (default: O0 O1 O2 O3)")
    compare.add_argument("--precision", action="append", dest="precisions", metavar="P[,P...]",
                         help="what the builds compute convs and matrix products from: fp32, fp16, bf16 or auto, "
                              "several by commas or repeats, each pipeline built in each (default fp32)")
    compare.add_argument("--runs", type=int, default=5, help="timed runs per build (default 5)")
    compare.add_argument("--target", metavar="llvm|cuda[:sm_XX]",
                         help="what TVM compiles each build for (default: cuda if a GPU is visible, else llvm)")
    compare.add_argument("--time-reference", action="store_true",
                         help="time each build's graph on the NumPy reference in float32 instead of compiling it")
    compare.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    _add_memory_arg(compare)
    compare.add_argument("--html", metavar="REPORT.html",
                         help="also write a self-contained HTML report: the graphs before and after (nodes coloured "
                              "by their error), error and latency per layer of each compiled build, the passes")
    compare.add_argument("--verify", action="store_true", help="run the IR verifier after every pass")
    compare.add_argument("--dump-after", action="append", default=[], metavar="PASS",
                         help="print the IR after this pass to stderr; repeatable")
    compare.add_argument("--check-each-pass", action="store_true",
                         help="run the float64 reference after every pass and name the first pass that changes "
                              "the outputs (exit status 1)")
    compare.add_argument("--explain", action="store_true",
                         help="print each pass's record and why rules declined to fire")
    compare.set_defaults(handler=cmd_compare)
    profile_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with termination_as_interrupt():
            return args.handler(args)
    except CnnCompileError as err:
        print(f"cnncompile: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM/SIGHUP as tools/signals.py raises them
        print(f"cnncompile: {describe(interrupt)}", file=sys.stderr)
        return exit_status(interrupt)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as git does, and keep Python's
        # exit-time flush of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141

