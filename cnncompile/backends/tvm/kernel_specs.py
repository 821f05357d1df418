"""Each distinct PrimFunc of a built module, as a profiler needs it without the graph or the build.

A loaded artifact keeps its optimized graph only as standard ONNX (fused nodes spelled out), so
it can no longer say which symbol runs which node, nor the shapes a kernel's buffers take once
weights are repacked and tables bound. `KernelSpec` records that at compile time, in the
manifest: the symbol, the nodes that call it, every buffer parameter's shape and dtype in call
order (inputs, tables, outputs), and the FLOPs and bytes one call does by its op's cost rule.

`time_kernel` times one of them alone with TVM's time evaluator (TVM 0.27's Relax VM has no
profiler), on buffers of those shapes: seeded standard-normal floats, and zeros for integer and
boolean buffers so that an index table stays in range whatever it indexes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from cnncompile.backends.tvm.lowering.layouts import physical_shape
from cnncompile.backends.tvm.module import NodeKernel
from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.ir.graph import Graph


@dataclass(frozen=True)
class Buffer:
    """One buffer parameter of a PrimFunc: its physical shape and element type."""

    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class KernelSpec:
    """One PrimFunc and the nodes that call it (repeated blocks share one); `flops` and `bytes` are per call."""

    symbol: str
    nodes: tuple[str, ...]
    op: str
    buffers: tuple[Buffer, ...]
    flops: int
    bytes: int

    @property
    def calls(self) -> int:
        return len(self.nodes)

    def as_dict(self) -> dict:
        return {"symbol": self.symbol, "nodes": list(self.nodes), "op": self.op,
                "buffers": [{"shape": list(b.shape), "dtype": b.dtype} for b in self.buffers],
                "flops": self.flops, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: Mapping) -> KernelSpec:
        try:
            buffers = tuple(Buffer(tuple(int(d) for d in b["shape"]), str(b["dtype"])) for b in data["buffers"])
            return cls(str(data["symbol"]), tuple(map(str, data["nodes"])), str(data["op"]), buffers,
                       int(data["flops"]), int(data["bytes"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"a kernel entry of the manifest lacks or garbles {err}; recompile the artifact") from None


def kernel_specs(graph: Graph, kernels: Sequence[NodeKernel]) -> list[KernelSpec]:
    """One spec per distinct symbol, in the order the graph first calls it."""
    nodes = {node.name: node for node in graph.nodes}
    callers: dict[str, list[str]] = {}
    first: dict[str, NodeKernel] = {}
    for kernel in kernels:
        callers.setdefault(kernel.symbol, []).append(kernel.node)
        first.setdefault(kernel.symbol, kernel)
    specs = []
    for symbol, kernel in first.items():
        node = nodes[kernel.node]
        repacks = dict(kernel.repacks)
        buffers = []
        for i, (value, t) in enumerate(zip(node.inputs, kernel.inputs)):
            if i in repacks:  # only constants are repacked (module._emit_call): the shape the repack gives
                packed = repacks[i](graph.constants[value])
                buffers.append(Buffer(tuple(packed.shape), str(packed.dtype)))
            else:
                buffers.append(Buffer(physical_shape(t), t.dtype.value))
        buffers += [Buffer(tuple(a.shape), str(a.dtype)) for a in kernel.tables]
        buffers += [Buffer(shape, t.dtype.value) for shape, t in zip(kernel.output_shapes, kernel.outputs)]
        types_in = [v.type for v in node.inputs]
        types_out = [v.type for v in node.outputs]
        specs.append(KernelSpec(symbol, tuple(callers[symbol]), node.op.name, tuple(buffers),
                                node.op.flops(types_in, types_out, node.attrs), node.op.bytes_moved(types_in, types_out)))
    return specs


def _module_with(library: tvm.runtime.Module | relax.VMExecutable, symbol: str) -> tvm.runtime.Module:
    """The module of the build that defines `symbol`: the VM executable keeps its PrimFuncs in an
    imported library, and the time evaluator looks only in the module it is given."""
    pending = [library.mod if isinstance(library, relax.VMExecutable) else library]
    while pending:
        module = pending.pop()
        if module.implements_function(symbol, query_imports=False):
            return module
        pending.extend(module.imports)
    raise ModelError(f"the built library defines no kernel '{symbol}', which its manifest lists; recompile the artifact")


def time_kernel(library: tvm.runtime.Module | relax.VMExecutable, device: tvm.runtime.Device, spec: KernelSpec,
                repeat: int, min_repeat_ms: int, rng: np.random.Generator) -> float:
    """Seconds one call of the kernel takes: the median of `repeat` runs, each as many calls as fill `min_repeat_ms`."""
    arrays = []
    for buffer in spec.buffers:
        dtype = np.dtype(buffer.dtype)
        array = rng.standard_normal(buffer.shape).astype(dtype) if dtype.kind == "f" else np.zeros(buffer.shape, dtype)
        arrays.append(tvm.runtime.tensor(array, device))
    evaluator = _module_with(library, spec.symbol).time_evaluator(spec.symbol, device, number=1, repeat=repeat,
                                                                  min_repeat_ms=min_repeat_ms)
    try:
        return float(np.median(evaluator(*arrays).results))
    except (RuntimeError, ValueError) as err:  # a buffer the kernel was not built for: manifest and library disagree
        raise CnnCompileError(f"timing kernel '{spec.symbol}' ({spec.op}, nodes {', '.join(spec.nodes)}) failed: "
                              f"{str(err).strip().splitlines()[-1]}; recompile the artifact") from None
