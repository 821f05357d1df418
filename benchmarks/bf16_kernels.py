"""bf16 conv kernels against float32 ones on the layers that dominate the zoo: the data behind the
cost model's PAIR_DOT_SPEEDUP and WIDENED_FMA (cnncompile/selection/calibration.py).

    .venv/bin/python benchmarks/bf16_kernels.py [--rounds 9]

Each layer is compiled as a one-conv graph in NCHW16c (direct, the template's default tile)
three times: in float32; in bf16 for this CPU, whose AVX512_BF16 makes it a vdpbf16ps kernel
(Dot.BF16_PAIRS); and in bf16 for the same CPU with that feature hidden, so the operands are
widened to float32 before each FMA. The conv kernels alone are timed on arguments already in
their layout, in alternating rounds, and the fastest runs compared (the machine may be shared).
Needs a CPU with AVX512_BF16.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import tvm

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.api import compile as compile_model
from cnncompile.backends.tvm.plan import Dot
from cnncompile.backends.tvm.target import TargetSpec, host_cpu
from cnncompile.ir.types import nchwc
from cnncompile.selection.candidates import Candidate

sys.path.insert(0, str(Path(__file__).parent))
import selection_calibration  # noqa: E402
from selection_calibration import LAYERS, one_conv  # noqa: E402

BLOCKED = Candidate(ConvAlgorithm.DIRECT, nchwc(16))


class Timed(selection_calibration.Timed):
    """The conv kernel of one build in `precision`, with arguments of its types in its layout."""

    def __init__(self, graph, target: TargetSpec, precision: str, rng: np.random.Generator):
        model = compile_model(graph, target, "O0", precision=precision)
        node = next(n for n in model.graph.nodes if n.op.name == "FusedConv")
        kernel = next(k for k in model.kernels if k.node == node.name)
        self.dot = kernel.plan.dot
        logical = [model.graph.constants[v] if v in model.graph.constants
                   else rng.standard_normal(v.type.shape).astype(v.type.dtype.numpy) for v in node.inputs]
        device = tvm.cpu()
        self.args = [tvm.runtime.tensor(np.ascontiguousarray(a), device) for a in kernel.arguments(logical)]
        out = node.outputs[0].type.dtype.value
        self.args += [tvm.runtime.empty(s, out, device) for s in kernel.output_shapes]
        self.function = model.library.mod.get_function(kernel.symbol, query_imports=True)
        self.times: list[float] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    host = host_cpu()
    if not host.bf16_pairs:
        sys.exit(f"{host} lacks AVX512_BF16: nothing to measure")
    widened = TargetSpec(host.device, host.arch, (*host.features, "-avx512bf16"))
    rng = np.random.default_rng(0)
    print(f"host {host}; each kernel's fastest of {args.rounds} alternating rounds")
    print(f"  {'layer':<30} {'fp32 ms':>8} {'pairs ms':>9} {'widened ms':>11} {'fp32/pairs':>11} {'fp32/widened':>13}")
    pairs_ratios, widened_ratios = [], []
    for name, x_shape, out, kernel, stride, group in LAYERS:
        if group > 1 or x_shape[1] % 16 or out % 16:
            continue
        graph = lambda: one_conv(x_shape, out, kernel, stride, group, BLOCKED, rng)[0]  # noqa: E731
        builds = {"fp32": Timed(graph(), host, "fp32", rng), "pairs": Timed(graph(), host, "bf16", rng),
                  "widened": Timed(graph(), widened, "bf16", rng)}
        assert builds["pairs"].dot is Dot.BF16_PAIRS and builds["widened"].dot is Dot.FMA, name
        for timed in builds.values():
            timed.run(1)
        for _ in range(args.rounds):
            for timed in builds.values():
                timed.run()
        best = {label: min(t.times) * 1e3 for label, t in builds.items()}
        pairs_ratios.append(best["fp32"] / best["pairs"])
        widened_ratios.append(best["fp32"] / best["widened"])
        print(f"  {name:<30} {best['fp32']:8.3f} {best['pairs']:9.3f} {best['widened']:11.3f} "
              f"{pairs_ratios[-1]:10.2f}x {widened_ratios[-1]:12.2f}x")
    print(f"median fp32 / pairs = {statistics.median(pairs_ratios):.2f}x, "
          f"fp32 / widened = {statistics.median(widened_ratios):.2f}x")


if __name__ == "__main__":
    main()
