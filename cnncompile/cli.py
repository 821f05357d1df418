"""The `cnncompile` command line.

Every command that takes a model accepts an ONNX path; `--json` prints one JSON object.
A cnncompile error is printed as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cnncompile.errors import CnnCompileError


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an ONNX file")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD...",
                        help="bind an input's shape (dynamic dims), e.g. data=1x3x224x224; repeatable")


def _graph(args: argparse.Namespace):
    from cnncompile.tools.models import load_model, parse_input_shape

    return load_model(args.model, dict(parse_input_shape(s) for s in args.input_shape))


def cmd_inspect(args: argparse.Namespace) -> int:
    from cnncompile.tools.inspect import format_table, layer_table

    graph = _graph(args)
    rows = layer_table(graph)
    if args.json:
        print(json.dumps({"model": args.model, "layers": [r.as_dict() for r in rows]}))
    elif args.ir:
        print(graph)
    else:
        print(format_table(rows))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from cnncompile.backends.reference import run_reference
    from cnncompile.fileio import save_arrays
    from cnncompile.tools.models import load_inputs, random_inputs

    graph = _graph(args)
    inputs = random_inputs(graph, args.seed) if args.random_inputs else load_inputs(graph, args.input)
    outputs = run_reference(graph, inputs, dtype=args.dtype)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnncompile", description="A declarative graph compiler for CNNs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="per-layer shapes, memory, parameters and FLOPs of a model")
    _add_model_args(inspect)
    inspect.add_argument("--ir", action="store_true", help="print the imported IR instead of the table")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(handler=cmd_inspect)

    run = commands.add_parser("run", help="run a model on the NumPy reference backend")
    _add_model_args(run)
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="an input array; repeatable")
    run.add_argument("--random-inputs", action="store_true", help="draw standard-normal inputs instead")
    run.add_argument("--seed", type=int, default=0, help="seed for --random-inputs")
    run.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="compute precision")
    run.add_argument("--output", metavar="FILE.npz", help="save the outputs (written atomically)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(handler=cmd_run)

    ops = commands.add_parser("ops", help="list every registered op")
    ops.add_argument("--json", action="store_true", help="print one JSON object")
    ops.set_defaults(handler=cmd_ops)

    demo = commands.add_parser("demo", help="import ResNet-50, run it, and validate it against the float64 reference")
    demo.add_argument("--seed", type=int, default=0, help="seed for weights and inputs")
    demo.set_defaults(handler=cmd_demo)
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


if __name__ == "__main__":
    sys.exit(main())
