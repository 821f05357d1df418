"""CompiledModel: what `cnncompile.compile` returns and `cnncompile.load` restores.

It joins the TVM backend's library to the graph it was built from, which its artifact keeps as
ONNX (frontends' export): so it sits beside the API, above both.
"""

from __future__ import annotations

import os
import platform
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tvm

from cnncompile.backends.tvm.artifact import GRAPH, LIBRARY, read_manifest, write_artifact
from cnncompile.backends.tvm.kernel_specs import KernelSpec, kernel_specs
from cnncompile.backends.tvm.module import NodeKernel
from cnncompile.backends.tvm.runtime import Benchmark, Signature, TensorSpec, VMRunner
from cnncompile.backends.tvm.target import TargetSpec
from cnncompile.buckets import Buckets, run_bucketed
from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.frontends.onnx_export import save_onnx
from cnncompile.ir.graph import Graph
from cnncompile.resources import MemoryEstimate, MemoryLimit
from cnncompile.version import __version__


@dataclass(frozen=True)
class Provenance:
    """Where a compiled model came from: its source, that source's hash, the pipeline run on it, and the
    precision its convs and matrix products compute in."""

    source: str
    sha256: str
    pipeline: str
    precision: str = "fp32"


def versions() -> dict[str, str]:
    return {"cnncompile": __version__, "tvm": tvm.__version__, "onnx": onnx.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


class CompiledModel:
    """A model compiled for one target: run it, time it, save it.

    `graph` (the optimized IR; the graph as imported for TVM's default path) and `kernels`
    (each node's PrimFunc; none on TVM's default path) are known only for a model compiled
    in this process; validation uses them to re-run layer by layer. So are `choices`: how
    and why each conv's algorithm, layout and tile were chosen (`compile --explain`).
    `memory` is what a run needs at its peak, estimated at compile time and kept in the
    manifest, so that a machine with less memory refuses the artifact before running it. So are
    `kernel_specs` (each distinct kernel's symbol, callers, buffer shapes and cost), what `profile`
    times a loaded artifact by.

    A model built for batch `buckets` (cnncompile.buckets) has one Relax function per bucket; its
    `signature`, `graph`, `kernels`, `choices` and `kernel_specs` are the largest bucket's, and `run`
    takes any batch up to it.
    """

    def __init__(self, library: tvm.runtime.Module, target: TargetSpec, signature: Signature,
                 provenance: Provenance, graph: Graph | None = None, kernels: list[NodeKernel] | None = None,
                 origin: Path | None = None, choices: Sequence[Any] = (), memory: MemoryEstimate | None = None,
                 specs: Sequence[KernelSpec] | None = None, buckets: Buckets | None = None):
        self.library = library
        self.target = target
        self.signature = signature
        self.provenance = provenance
        self.graph = graph
        self.kernels = kernels
        self.choices = list(choices)  # each conv's cnncompile.selection Choice, for --explain
        self.memory = memory
        self._specs = None if specs is None else list(specs)
        self._origin = origin
        self.buckets = buckets
        self._runner: VMRunner | None = None
        self._bucket_runners: dict[int, VMRunner] = {}
        self._runner_lock = threading.Lock()  # threads' first calls at once make one runner, one VM pool

    def __repr__(self) -> str:
        return (f"CompiledModel({self.provenance.source} for {self.target}, -p {self.provenance.pipeline}: "
                f"{', '.join(map(str, self.signature.inputs))} -> {', '.join(map(str, self.signature.outputs))})")

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.signature.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.signature.outputs

    @property
    def kernel_specs(self) -> list[KernelSpec] | None:
        """Each distinct kernel of the build; None on TVM's default path and for artifacts saved before
        manifests recorded them."""
        if self._specs is None and self.graph is not None and self.kernels is not None:
            self._specs = kernel_specs(self.graph, self.kernels)
        return self._specs

    @property
    def runner(self) -> VMRunner:
        with self._runner_lock:
            if self._runner is None:
                self._runner = VMRunner(self.library, self.target, self.signature)
            return self._runner

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs by name for inputs by name; shapes and dtypes must match the signature, but for
        the batch of a bucketed model, which may be any size up to its largest bucket."""
        if self.buckets is None:
            return self.runner(inputs)
        static = {s.name: s.shape[1:] for s in self.inputs if s.name in self.buckets.inputs}
        return run_bucketed(self.buckets, static, lambda size, padded: self.bucket_runner(size)(padded), inputs)

    def bucket_runner(self, size: int) -> VMRunner:
        """The runner of the bucket `size` (its Relax function and signature), made on first use."""
        if size == self.buckets.largest:
            return self.runner
        with self._runner_lock:
            if size not in self._bucket_runners:
                self._bucket_runners[size] = VMRunner(self.library, self.target,
                                                      self.buckets.signature(self.signature, size),
                                                      self.buckets.function(size))
            return self._bucket_runners[size]

    def run_node(self, name: str, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One node's kernel alone on the given input arrays: the unit of layer-by-layer validation."""
        if self.graph is None or self.kernels is None:
            raise CnnCompileError("layer-by-layer runs need cnncompile's own kernels, compiled in this process: "
                                  "not a loaded artifact, nor TVM's default path")
        node = next(n for n in self.graph.nodes if n.name == name)
        kernel = next(k for k in self.kernels if k.node == name)
        device = self.runner.device
        typed = [np.require(a, v.type.dtype.numpy, "C") for a, v in zip(arrays, node.inputs)]  # 0-d stays 0-d
        args = [tvm.runtime.tensor(a, device) for a in kernel.arguments(typed)]
        outputs = [tvm.runtime.empty(shape, v.type.dtype.value, device)
                   for shape, v in zip(kernel.output_shapes, node.outputs)]
        self.library.mod.get_function(kernel.symbol, query_imports=True)(*args, *outputs)
        return kernel.logical_outputs([o.numpy() for o in outputs])

    def benchmark(self, inputs: Mapping[str, np.ndarray] | None = None, warmup: int = 3,
                  repeat: int = 20) -> Benchmark:
        """Median latency with its spread; random inputs unless given."""
        if inputs is None:
            rng = np.random.default_rng(0)
            inputs = {s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in self.inputs}
        return self.runner.benchmark(inputs, warmup, repeat)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the artifact directory atomically (see cnncompile.backends.tvm.artifact)."""

        def fill(staging: Path) -> dict:
            if self._origin is not None:
                shutil.copyfile(self._origin / LIBRARY, staging / LIBRARY)
                shutil.copyfile(self._origin / GRAPH, staging / GRAPH)
            else:
                self.library.export_library(str(staging / LIBRARY))
                save_onnx(self.graph, staging / GRAPH)
            return {
                "source": self.provenance.source,
                "source_sha256": self.provenance.sha256,
                "pipeline": self.provenance.pipeline,
                "precision": self.provenance.precision,
                "target": self.target.as_dict(),
                "inputs": [s.as_dict() for s in self.inputs],
                "outputs": [s.as_dict() for s in self.outputs],
                "files": {"library": LIBRARY, "graph": GRAPH},
                **({} if self.memory is None else {"memory": self.memory.as_dict()}),
                **({} if self.buckets is None else {"buckets": self.buckets.as_dict()}),
                **({} if self.kernel_specs is None else {"kernels": [k.as_dict() for k in self.kernel_specs]}),
                "versions": versions(),
            }

        return write_artifact(directory, fill)


def load_compiled(directory: str | os.PathLike,
                  limit_for: Callable[[TargetSpec], MemoryLimit] | None = None) -> CompiledModel:
    """A saved artifact, checked (files present, library hash, and the memory its manifest estimates
    against `limit_for(its target)`) before its library is loaded."""
    root = Path(directory)
    manifest = read_manifest(root)
    try:
        target = TargetSpec.from_dict(manifest["target"])
        signature = Signature(tuple(map(TensorSpec.from_dict, manifest["inputs"])),
                              tuple(map(TensorSpec.from_dict, manifest["outputs"])))
        provenance = Provenance(manifest["source"], manifest["source_sha256"], manifest["pipeline"],
                                manifest.get("precision", "fp32"))
        memory = MemoryEstimate.from_dict(manifest["memory"]) if "memory" in manifest else None
        specs = [KernelSpec.from_dict(k) for k in manifest["kernels"]] if "kernels" in manifest else None
        buckets = Buckets.from_dict(manifest["buckets"]) if "buckets" in manifest else None
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(f"artifact '{root}': its manifest lacks or garbles {err}; recompile it") from None
    if memory is not None and limit_for is not None:
        limit_for(target).check(memory, f"running artifact '{root}'")
    if not (root / GRAPH).is_file():
        raise ModelError(f"artifact '{root}' is missing {GRAPH}; recompile it with `cnncompile compile`")
    try:
        library = tvm.runtime.load_module(str(root / LIBRARY))
    except (RuntimeError, OSError) as err:
        raise ModelError(f"artifact '{root}': cannot load {LIBRARY} ({str(err).strip().splitlines()[-1]}); "
                         f"it was built for {target}, recompile it here") from None
    return CompiledModel(library, target, signature, provenance, origin=root, memory=memory, specs=specs,
                         buckets=buckets)
