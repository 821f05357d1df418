"""Every zoo model and every onnx light model, full size, compiled -p O3 for this CPU and validated.

The test suite compiles the zoo at reduced resolutions to stay inside its time budget;
this script does what it cannot: each model at its published input size (the light
models at theirs, with random He-initialised weights and calibrated BatchNorm statistics
in place of their constant ones), compiled for LLVM, judged by `cnncompile validate`'s
policy against the float64 reference (end to end, then layer by layer when float32
rounding through depth exceeds the end-to-end tolerance), and timed. One line per model:
compile seconds, median latency, end-to-end error, the verdict and, on failure, the first
node that diverged.
"""

from __future__ import annotations

import argparse
import os
import time

import onnx

import cnncompile
from cnncompile.frontends import zoo
from cnncompile.frontends.onnx import load_onnx
from cnncompile.ir.graph import Graph
from cnncompile.frontends.load import load_model
from cnncompile.tools.models import LIGHT_MODELS, light_model_path, random_inputs
from cnncompile.tools.validate import judge
from cnncompile.tools.weights import randomize_weights


def light_graph(name: str) -> Graph:
    return load_onnx(randomize_weights(onnx.load(str(light_model_path(name)))))


def check(label: str, graph: Graph, target: str, pipeline: str) -> bool:
    start = time.perf_counter()
    compiled = cnncompile.compile(graph, target=target, pipeline=pipeline)
    seconds = time.perf_counter() - start
    result = judge(compiled, graph, random_inputs(graph))
    latency = compiled.benchmark(warmup=1, repeat=5)
    shape = "x".join(map(str, graph.inputs[0].type.shape))
    line = (f"{label:<22} {shape:<14} compile {seconds:6.1f} s  latency {latency.median_ms:9.2f} ms  "
            f"error {result.error:.1e}  {'PASS' if result.passed else 'FAIL'}")
    divergence = result.first_divergence
    if divergence is not None:
        line += f"  first divergence: {divergence.node} ({divergence.op}) error {divergence.error:.1e}"
    print(line, flush=True)
    return result.passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="llvm")
    parser.add_argument("-p", "--pipeline", default="O3")
    parser.add_argument("--only", nargs="*", help="model names (zoo or light) to run instead of all")
    args = parser.parse_args()
    os.environ.setdefault("TVM_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    models = [(f"zoo:{name}", lambda name=name: load_model(f"zoo:{name}")) for name in zoo.names()]
    models += [(f"light:{name}", lambda name=name: light_graph(name)) for name in LIGHT_MODELS]
    if args.only:
        models = [(label, build) for label, build in models if label.split(":", 1)[1] in args.only]
    failed = [label for label, build in models if not check(label, build(), args.target, args.pipeline)]
    print(f"\n{len(models) - len(failed)}/{len(models)} models compiled and validated"
          + (f"; failed: {', '.join(failed)}" if failed else ""))


if __name__ == "__main__":
    main()
