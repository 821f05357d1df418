"""Running a compiled model: the Relax VM behind a NumPy-in, NumPy-out interface.

A CompiledModel knows its signature (input and output names, shapes, dtypes) and checks
every call against it: the VM itself would either crash or silently reinterpret a
float64 array as float32, so a wrong shape or dtype is refused with a message saying
what was expected.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from cnncompile.backends.tvm.target import TargetSpec, gpu_visible, pool_threads
from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.ir.graph import Graph, Value

# TVM sizes its thread pool by physical cores, which on a 2-vCPU machine reports one: the
# compiled model would run on half the machine. Use every CPU this process may run on,
# unless the user has chosen (TVM reads the variable when its pool first starts).
os.environ.setdefault("TVM_NUM_THREADS", str(pool_threads()))
# Between two kernels of a run, a worker that went to sleep takes ~30 us to wake on a VM, and
# DenseNet-121 launches ~280 parallel kernels: with no spinning it ran 27.2 ms, with 300 to
# 300000 yields 24.1-24.6. TVM's default 300000 keeps a core busy for ~60 ms after every run;
# 3000 for ~1 ms.
os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "3000")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def of(cls, value: Value) -> TensorSpec:
        return cls(value.name, value.type.shape, value.type.dtype.value)

    def as_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: Mapping) -> TensorSpec:
        return cls(str(data["name"]), tuple(int(d) for d in data["shape"]), str(data["dtype"]))

    def __str__(self) -> str:
        return f"{self.name} {self.dtype}[{'x'.join(map(str, self.shape))}]"


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def of(cls, graph: Graph) -> Signature:
        return cls(tuple(map(TensorSpec.of, graph.inputs)), tuple(map(TensorSpec.of, graph.outputs)))

    def check(self, arrays: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The inputs in parameter order, after checking names, shapes and dtypes."""
        expected = ", ".join(map(str, self.inputs))
        names = {spec.name for spec in self.inputs}
        missing = [n for n in (s.name for s in self.inputs) if n not in arrays]
        unknown = sorted(set(arrays) - names)
        if missing or unknown:
            problem = f"missing input(s) {', '.join(missing)}" if missing else f"unknown input(s) {', '.join(unknown)}"
            raise ModelError(f"{problem}; the model takes {expected}")
        ordered = []
        for spec in self.inputs:
            array = np.asarray(arrays[spec.name])
            if array.shape != spec.shape:
                raise ModelError(f"input '{spec.name}' has shape {list(array.shape)} but the model was compiled "
                                 f"for {list(spec.shape)}; recompile with --input-shape {spec.name}="
                                 f"{'x'.join(map(str, array.shape))} or pass an array of that shape")
            if array.dtype != np.dtype(spec.dtype):
                raise ModelError(f"input '{spec.name}' is {array.dtype} but the model takes {spec.dtype}; "
                                 f"convert it first (array.astype(np.{spec.dtype}))")
            ordered.append(np.require(array, requirements="C"))  # ascontiguousarray makes a 0-d array 1-d
        return ordered


@dataclass(frozen=True)
class Benchmark:
    """Latency of one inference in milliseconds over `repeats` timed runs."""

    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms median (min {self.min_ms:.3f}, max {self.max_ms:.3f}, {self.repeats} runs)"


def device_for(target: TargetSpec) -> tvm.runtime.Device:
    if target.is_gpu:
        if not gpu_visible():
            raise CnnCompileError(f"this model was compiled for {target} but no CUDA GPU is visible here; "
                                  "run it on a machine with one, or compile it with --target llvm")
        return tvm.cuda(0)
    return tvm.cpu(0)


class VMRunner:
    """The Relax VM for one executable on one device, called with checked NumPy inputs.

    Safe to call from many threads at once. A Relax VM keeps the call in progress (its
    frames and registers) in itself, so two threads in one VM overwrite each other's
    arguments (`TypeError: Mismatched type on argument #0`). Each call therefore borrows an
    idle VM from a pool and returns it when done; when every VM is busy a new one is made,
    which costs about 2 ms and no weights (a VM shares the executable's constants), so the
    pool grows to the most calls ever in flight at once and no caller waits for another.
    `function` is the Relax function it calls: `main`, or one shape bucket's (cnncompile.buckets).
    """

    def __init__(self, library: tvm.runtime.Module, target: TargetSpec, signature: Signature,
                 function: str = "main"):
        self.device = device_for(target)
        self.library = library
        self.signature = signature
        self.function = function
        self._lock = threading.Lock()
        self.vms_made = 0  # the size the pool has grown to
        self._idle: list[relax.VirtualMachine] = [self._new_vm()]

    def _new_vm(self) -> relax.VirtualMachine:
        with self._lock:
            self.vms_made += 1
        return relax.VirtualMachine(self.library, self.device)

    @contextmanager
    def _borrowed(self) -> Iterator[relax.VirtualMachine]:
        with self._lock:
            vm = self._idle.pop() if self._idle else None
        if vm is None:
            vm = self._new_vm()
        try:
            yield vm
        finally:
            with self._lock:
                self._idle.append(vm)

    def to_device(self, arrays: Mapping[str, np.ndarray]) -> list[tvm.runtime.Tensor]:
        return [tvm.runtime.tensor(a, self.device) for a in self.signature.check(arrays)]

    def __call__(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = self.to_device(arrays)
        with self._borrowed() as vm:
            results = vm[self.function](*args)
            return {spec.name: result.numpy() for spec, result in zip(self.signature.outputs, results)}

    def benchmark(self, arrays: Mapping[str, np.ndarray], warmup: int, repeat: int) -> Benchmark:
        args = self.to_device(arrays)
        times = []
        with self._borrowed() as vm:
            main = vm[self.function]
            for _ in range(warmup):
                main(*args)
            self.device.sync()
            for _ in range(repeat):
                start = time.perf_counter()
                main(*args)
                self.device.sync()
                times.append((time.perf_counter() - start) * 1e3)
        return Benchmark(statistics.median(times), min(times), max(times), repeat)
