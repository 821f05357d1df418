"""Measuring one candidate for one conv workload: its kernel built alone, timed on a device.

The kernel is exactly what a compile would generate for a FusedConv node of the workload
computing by the candidate (the same lowering, schedule and weight packing), built as a
module holding that one PrimFunc. Its arguments are random arrays in the kernel's physical
shapes, except the tables (Winograd's transform matrices, FFT's twiddles), which are the
kernel's own: timing does not depend on the values, but a table is part of the kernel.

X is stored in the candidate's own layout (a conv writing NCHW8c is timed reading NCHW8c),
which is what assign-layouts arranges along a chain of convs.

The time of one candidate is the median of REPEATS runs of `number` calls each, `number`
chosen from a probe so that one run lasts about SECONDS_PER_RUN: long enough that timer
resolution and one stray interrupt do not decide, short enough that a whole measurement
stays near 50-100 ms.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tvm

from cnncompile.algorithms.applicability import ConvSpec
from cnncompile.backends.tvm.build import build_module
from cnncompile.backends.tvm.module import build_primfunc
from cnncompile.backends.tvm.runtime import device_for
from cnncompile.backends.tvm.target import TargetSpec
from cnncompile.ir.graph import Node, Value
from cnncompile.ir.types import TensorType
from cnncompile.ops.fused import FusedConv, FusedConvAttrs
from cnncompile.selection.candidates import Candidate, apply_candidate
from cnncompile.selection.tuning_cache import Result

SECONDS_PER_RUN = 0.015
REPEATS = 5
SYMBOL = "tuned_conv"


def workload_node(spec: ConvSpec, candidate: Candidate) -> Node:
    """A FusedConv node (bias, no activation) of the workload computing by `candidate`."""
    x_shape = (spec.batch, spec.in_channels, *spec.spatial)
    layout = candidate.layout if candidate.layout is not None and candidate.layout.holds(x_shape) else None
    x = Value("x", TensorType(x_shape, spec.dtype, layout))
    w = Value("w", TensorType((spec.out_channels, spec.in_channels // spec.group, *spec.kernel), spec.dtype))
    b = Value("b", TensorType((spec.out_channels,), spec.dtype))
    attrs = apply_candidate(FusedConvAttrs(strides=spec.strides, dilations=spec.dilations, group=spec.group,
                                           pads=spec.pads_begin + spec.pads_end, kernel_shape=spec.kernel), candidate)
    (y_type,) = FusedConv.infer([x.type, w.type, b.type], attrs)
    return Node(FusedConv, [x, w, b], [Value("y", y_type)], attrs, "conv")


@dataclass(frozen=True)
class Built:
    """A candidate's kernel compiled for the target, and the arrays to call it with."""

    executable: tvm.runtime.Executable
    arguments: tuple[np.ndarray, ...]


def build(spec: ConvSpec, candidate: Candidate, target: TargetSpec, seed: int = 0) -> Built:
    """Lower, schedule and compile the candidate's kernel (weights are constants, as in a model)."""
    func, kernel = build_primfunc(workload_node(spec, candidate), (False, True, True), target, SYMBOL)
    executable = build_module(tvm.IRModule({SYMBOL: func}), target)
    rng = np.random.default_rng(seed)
    tables = [array for _, array in kernel.tables]
    n_inputs = len(func.params) - len(tables) - len(kernel.outputs)
    shapes = [(tuple(int(d) for d in p.ty.shape), str(p.ty.dtype)) for p in func.params]
    random = [rng.standard_normal(shape).astype(dtype) for shape, dtype in shapes]
    arguments = random[:n_inputs] + tables + random[n_inputs + len(tables):]
    return Built(executable, tuple(arguments))


class Device(Protocol):
    """Where candidates run: this process's CPU or GPU, or a remote one over RPC."""

    name: str

    def time(self, built: Built) -> float: ...


def time_function(module: tvm.runtime.Module, device: tvm.runtime.Device, arguments: list) -> float:
    """Median seconds of one call of the kernel, with `number` calls per run sized by a probe."""
    probe = module.time_evaluator(SYMBOL, device, number=1, repeat=2)
    once = max(min(probe(*arguments).results), 1e-7)  # the first of the two pays for warming up
    number = max(1, math.ceil(SECONDS_PER_RUN / once))
    timer = module.time_evaluator(SYMBOL, device, number=number, repeat=REPEATS)
    return statistics.median(timer(*arguments).results)


class LocalDevice:
    """The device of this process for the target (the CPU, or CUDA GPU 0); an error at once if there is none."""

    name = "local"

    def __init__(self, target: TargetSpec):
        self.device = device_for(target)

    def time(self, built: Built) -> float:
        arguments = [tvm.runtime.tensor(a, self.device) for a in built.arguments]
        return time_function(built.executable.jit(), self.device, arguments)


@dataclass
class RemoteDevice:
    """A device behind an RPC session: each kernel is exported, uploaded and loaded there."""

    session: tvm.rpc.RPCSession
    target: TargetSpec
    name: str

    def time(self, built: Built) -> float:
        with tempfile.TemporaryDirectory(prefix="cnncompile-tune-") as workdir:
            filename = f"{SYMBOL}_{uuid.uuid4().hex}.so"
            path = os.path.join(workdir, filename)
            built.executable.export_library(path)
            self.session.upload(path, filename)
        module = self.session.load_module(filename)
        device = self.session.cuda(0) if self.target.is_gpu else self.session.cpu(0)
        arguments = [tvm.runtime.tensor(a, device) for a in built.arguments]
        return time_function(module, device, arguments)


def _reason(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


def measure(spec: ConvSpec, candidate: Candidate, target: TargetSpec, device: Device,
            build_lock: AbstractContextManager = nullcontext()) -> tuple[Result, Built | None]:
    """The candidate's median seconds on `device`, or why it failed to build or run (never raised:
    one broken candidate must not stop a tuning run), and its build, kept so that it can be timed
    again. `build_lock` serializes builds between threads measuring on several devices, since
    TVM's compiler is not known to be thread-safe."""
    try:
        with build_lock:
            built = build(spec, candidate, target)
    except Exception as err:  # noqa: BLE001 - any failure is the candidate's, recorded with its reason
        return Result(None, device.name, f"build failed: {_reason(err)}"), None
    try:
        return Result(device.time(built), device.name), built
    except Exception as err:  # noqa: BLE001
        return Result(None, device.name, f"run failed: {_reason(err)}"), None
