"""Measure our TVM conv kernels per (algorithm, layout) on the layers that dominate the zoo, beside
the cost model's estimates: the data behind cnncompile/selection/calibration.py.

    .venv/bin/python benchmarks/selection_calibration.py [--rounds 7]

Each candidate (default tile) is compiled as a one-conv graph; its conv kernel alone is
timed on arguments already in the kernel's layout (the layout transforms around it are
not counted: in a network, assign-layouts keeps neighbours in that layout). Candidates
of one layer are timed in alternating rounds, so machine noise hits them alike; the fastest
and the median run are reported, with the achieved GFLOP/s (direct-conv FLOPs / fastest
time, so algorithms compare on the same work), the efficiency that makes the cost model's
formula reproduce the fastest time ("implied"), the model's own efficiency, and its
estimate of the kernel alone (no layout transforms around it).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tvm

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec
from cnncompile.api import compile as compile_model
from cnncompile.backends.tvm.target import parse_target
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.fused import FusedConv, FusedConvAttrs
from cnncompile.ops.layout import LayoutTransform
from cnncompile.selection.candidates import Candidate, apply_candidate, candidates, plan_of
from cnncompile.selection.cost import Machine, estimate, transform_efficiency, work

# (name, input NCHW, output channels, kernel, stride, group)
LAYERS = [
    ("resnet 3x3 64->64 @56", (1, 64, 56, 56), 64, 3, 1, 1),
    ("resnet50 1x1 64->256 @56", (1, 64, 56, 56), 256, 1, 1, 1),
    ("resnet50 1x1 256->64 @56", (1, 256, 56, 56), 64, 1, 1, 1),
    ("resnet 3x3 128->128 @28", (1, 128, 28, 28), 128, 3, 1, 1),
    ("resnet50 3x3 256->256 @14", (1, 256, 14, 14), 256, 3, 1, 1),
    ("resnet 3x3 512->512 @7", (1, 512, 7, 7), 512, 3, 1, 1),
    ("densenet 3x3 128->32 @56", (1, 128, 56, 56), 32, 3, 1, 1),
    ("densenet 3x3 128->32 @14", (1, 128, 14, 14), 32, 3, 1, 1),
    ("resnet 3x3 s2 64->128 @56", (1, 64, 56, 56), 128, 3, 2, 1),
    ("mobilenetv2 dw3x3 32 @112", (1, 32, 112, 112), 32, 3, 1, 32),
    ("mobilenetv2 dw3x3 144 @56", (1, 144, 56, 56), 144, 3, 1, 144),
    ("large kernel 7x7 32->32 @28", (1, 32, 28, 28), 32, 7, 1, 1),
]
# fft is timed on the large-kernel layer only unless --fft: on the others it is 5-30x slower than direct
FFT_LAYERS = ("large kernel",)


def one_conv(x_shape, out, kernel, stride, group, candidate: Candidate, rng) -> tuple[Graph, str]:
    graph = Graph("calibration")
    x = graph.add_input("x", TensorType(x_shape, DType.FLOAT32))
    w = graph.add_constant((rng.standard_normal((out, x_shape[1] // group, kernel, kernel))
                            * np.sqrt(2 / (x_shape[1] // group * kernel * kernel))).astype(np.float32), "w")
    b = graph.add_constant(np.zeros(out, np.float32), "b")
    pad = kernel // 2
    attrs = apply_candidate(FusedConvAttrs(strides=(stride, stride), pads=(pad,) * 4, group=group), candidate)
    source = x
    if candidate.layout is not None:
        source = graph.add_node(LayoutTransform, [x], layout=candidate.layout)[0]
    (y,) = graph.add_node(FusedConv, [source, w, b], attrs, name="conv")
    if candidate.layout is not None:
        (y,) = graph.add_node(LayoutTransform, [y], layout=None)
    graph.mark_outputs(y)
    return graph, "conv"


class Timed:
    def __init__(self, candidate: Candidate, graph: Graph, target, rng):
        self.candidate = candidate
        model = compile_model(graph, target, "O0")
        node = next(n for n in model.graph.nodes if n.name == "conv")
        kernel = next(k for k in model.kernels if k.node == "conv")
        device = tvm.cpu()
        logical = [rng.standard_normal(v.type.shape).astype(np.float32) if v not in model.graph.constants
                   else model.graph.constants[v] for v in node.inputs]
        self.args = [tvm.runtime.tensor(np.ascontiguousarray(a), device) for a in kernel.arguments(logical)]
        self.args += [tvm.runtime.empty(s, "float32", device) for s in kernel.output_shapes]
        self.function = model.library.mod.get_function(kernel.symbol, query_imports=True)
        self.times: list[float] = []
        self.model = model

    def run(self, repeat: int = 3) -> None:
        start = time.perf_counter()
        for _ in range(repeat):
            self.function(*self.args)
        self.times.append((time.perf_counter() - start) / repeat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", action="append", help="substring of a layer name (may be repeated)")
    parser.add_argument("--fft", action="store_true", help="time fft on every layer")
    args = parser.parse_args()
    target = parse_target("llvm")
    machine = Machine.of(target)
    rng = np.random.default_rng(0)
    print(f"target {target}, {machine.lanes} lanes, model peak {machine.peak / 1e9:.0f} GFLOP/s")
    for name, x_shape, out, kernel, stride, group in LAYERS:
        if args.only and not any(part in name for part in args.only):
            continue
        x_type = TensorType(x_shape, DType.FLOAT32)
        w_type = TensorType((out, x_shape[1] // group, kernel, kernel), DType.FLOAT32)
        spec = ConvSpec.of(x_type, w_type, strides=(stride, stride), pads=(kernel // 2,) * 4, group=group)
        timed = []
        for c in candidates(spec, target):
            if c.tile or (c.algorithm is ConvAlgorithm.FFT and not args.fft and not name.startswith(FFT_LAYERS)):
                continue
            try:
                timed.append(Timed(c, one_conv(x_shape, out, kernel, stride, group, c, rng)[0], target, rng))
            except Exception as err:  # noqa: BLE001 - a kernel that does not build is reported, not fatal
                print(f"  {c}: does not build: {str(err).splitlines()[0][:120]}")
        for t in timed:
            t.run(1)  # warm up
        for _ in range(args.rounds):
            for t in timed:
                t.run()
        direct_flops = 2.0 * spec.macs
        print(f"\n{name}: {spec}  ({direct_flops / 1e6:.0f} MFLOP direct)")
        print(f"  {'candidate':<22} {'median':>9} {'min':>9} {'GFLOP/s':>8} {'implied':>7} {'model':>6} "
              f"{'est.':>9}")
        for t in sorted(timed, key=lambda t: min(t.times)):
            best = min(t.times)  # the least disturbed run: the machine is shared
            plan = plan_of(t.candidate, spec, target, t.candidate.layout)
            done = work(plan, machine.lanes)
            est = estimate(t.candidate, plan, target)
            kernel_only = est.seconds - est.transform_bytes / machine.transform_bandwidth
            # the efficiency that makes the model's formula give the measured time
            compute = best - done.bytes / machine.bandwidth - done.stages * machine.launch
            if done.transform_flops:
                compute -= done.transform_flops / (machine.peak * transform_efficiency(plan, machine))
            # none when the model's memory, launch and transform terms alone exceed the measured time
            implied = f"{(done.flops - done.transform_flops) / (compute * machine.peak):7.3f}" if compute > 0 else "-"
            print(f"  {str(t.candidate):<22} {statistics.median(t.times) * 1e3:8.3f}m {best * 1e3:8.3f}m "
                  f"{direct_flops / best / 1e9:8.1f} {implied:>7} {est.efficiency:6.3f} {kernel_only * 1e3:8.3f}m")


if __name__ == "__main__":
    main()
