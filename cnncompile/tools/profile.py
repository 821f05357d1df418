"""`cnncompile profile`: where a compiled model's time goes, kernel by kernel, against the target's roofline.

Each distinct kernel of the build is timed alone (backends.tvm.kernel_specs.time_kernel: TVM's
time evaluator, as TVM 0.27's Relax VM has no profiler) and counted once per node that calls it,
so a ResNet's repeated block weighs what it runs. Achieved GFLOP/s and GB/s divide the FLOPs
and bytes its op declares (the ops registry's cost rules: every operand read and every result
written once) by one call's time. The peaks beside them are the cost model's
(selection.cost.Machine): on a CPU a nominal lanes x 2 FMA pipes x 2 x cores x 3 GHz and 100 GB/s
of cache bandwidth, on a GPU its class's float32 peak and DRAM bandwidth: estimates from the
target, not measurements of this machine.

The end-to-end VM latency is reported beside the kernels' sum. The two differ by what lies
between kernels (the VM's dispatch, its allocations, a thread pool waking) and by cache state:
each kernel is timed hot, on buffers of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnncompile.backends.tvm.kernel_specs import KernelSpec, time_kernel
from cnncompile.backends.tvm.runtime import Benchmark
from cnncompile.compiled import CompiledModel
from cnncompile.errors import CnnCompileError
from cnncompile.selection.cost import Machine


@dataclass(frozen=True)
class KernelTime:
    """One kernel's measured time per call, and what that makes of its declared work."""

    spec: KernelSpec
    seconds_per_call: float

    @property
    def seconds(self) -> float:
        """Its time in one inference: every call counted."""
        return self.seconds_per_call * self.spec.calls

    @property
    def gflops(self) -> float:
        return self.spec.flops / self.seconds_per_call / 1e9

    @property
    def gbps(self) -> float:
        return self.spec.bytes / self.seconds_per_call / 1e9


@dataclass(frozen=True)
class Profile:
    """Every kernel of one build, slowest first, and the whole model's latency on the VM."""

    model: str
    target: str
    kernels: tuple[KernelTime, ...]
    end_to_end: Benchmark
    peak_flops: float
    peak_bandwidth: float

    @property
    def total_seconds(self) -> float:
        return sum(k.seconds for k in self.kernels)

    def share(self, kernel: KernelTime) -> float:
        total = self.total_seconds
        return kernel.seconds / total if total > 0 else 0.0

    def as_dict(self) -> dict:
        return {"model": self.model, "target": self.target, "total_ms": self.total_seconds * 1e3,
                "end_to_end_ms": self.end_to_end.median_ms,
                "kernels": [{"name": k.spec.symbol, "op": k.spec.op, "nodes": list(k.spec.nodes),
                             "calls": k.spec.calls, "ms": k.seconds * 1e3, "ms_per_call": k.seconds_per_call * 1e3,
                             "share": self.share(k), "flops": k.spec.flops, "bytes": k.spec.bytes,
                             "gflops": k.gflops, "gbps": k.gbps, "peak_gflops": self.peak_flops / 1e9,
                             "peak_gbps": self.peak_bandwidth / 1e9} for k in self.kernels]}


def profile(model: CompiledModel, name: str, repeat: int = 5, min_repeat_ms: int = 10, seed: int = 0) -> Profile:
    """Time every kernel of `model` (`repeat` runs of at least `min_repeat_ms` each) and the model end to end."""
    specs = model.kernel_specs
    if specs is None:
        raise CnnCompileError(f"'{name}' has no kernel table: it was built by TVM's default path (its kernels are "
                              "TVM's own) or saved before artifacts recorded one; compile it with cnncompile again")
    if repeat < 1 or min_repeat_ms < 0:
        raise CnnCompileError(f"--repeat must be at least 1 and --min-repeat-ms not negative (got {repeat}, "
                              f"{min_repeat_ms})")
    rng = np.random.default_rng(seed)
    device = model.runner.device
    times = [KernelTime(s, time_kernel(model.library, device, s, repeat, min_repeat_ms, rng)) for s in specs]
    times.sort(key=lambda k: k.seconds, reverse=True)
    machine = Machine.of(model.target)
    return Profile(name, str(model.target), tuple(times), model.benchmark(repeat=max(repeat, 20)),
                   machine.peak, machine.bandwidth)


def format_profile(p: Profile) -> str:
    """The table a terminal shows: one row per kernel, slowest first, then the sum beside end to end."""
    rows = [("kernel", "op", "calls", "ms", "share", "GFLOP/s", "% peak", "GB/s", "% peak", "nodes")]
    for k in p.kernels:
        nodes = ", ".join(k.spec.nodes[:3]) + (f" +{k.spec.calls - 3}" if k.spec.calls > 3 else "")
        rows.append((k.spec.symbol, k.spec.op, str(k.spec.calls), f"{k.seconds * 1e3:.4f}", f"{p.share(k):.1%}",
                     f"{k.gflops:.2f}", f"{k.gflops * 1e9 / p.peak_flops:.1%}", f"{k.gbps:.2f}",
                     f"{k.gbps * 1e9 / p.peak_bandwidth:.1%}", nodes))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i in (0, 1, 9) else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             .rstrip() for r in rows]
    lines.append(f"\n{p.model} on {p.target}: kernels {p.total_seconds * 1e3:.4f} ms, end to end {p.end_to_end} "
                 f"on the Relax VM")
    lines.append(f"peaks (the cost model's nominal estimates for the target, not measured): "
                 f"{p.peak_flops / 1e9:.0f} GFLOP/s, {p.peak_bandwidth / 1e9:.0f} GB/s")
    return "\n".join(lines)
