"""Compilation targets: what `--target cuda:sm_90` or `llvm` means, and the host's CPU.

A target is `KIND[:ARCH]`: `cuda` (arch sm_80 unless given, e.g. `cuda:sm_90`) or `llvm`
(the host's CPU unless an LLVM cpu name is given, e.g. `llvm:skylake-avx512`).

The host's CPU is detected from LLVM, but LLVM names the silicon, not what the machine
lets a program use: a virtual machine often hides AVX-512 from a CPU that has it (an EPYC
reported as znver4 whose /proc/cpuinfo lacks avx512f). Running AVX-512 code there dies
with SIGILL, so every vector feature LLVM would assume but the kernel does not list is
switched off explicitly.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import tvm
from tvm.target import codegen

from cnncompile.errors import CnnCompileError

DEFAULT_CUDA_ARCH = "sm_80"
# What every arch from sm_80 on guarantees a kernel without opting in to more shared memory.
CUDA_LIMITS = {"max_threads_per_block": 1024, "max_shared_memory_per_block": 48 * 1024, "thread_warp_size": 32}
# Vector features whose absence from /proc/cpuinfo must be forced on LLVM, widest first.
_VECTOR_FEATURES = ("avx512f", "avx2", "fma", "avx")


class Device(enum.Enum):
    LLVM = "llvm"
    CUDA = "cuda"


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target: the device kind, its arch (CUDA sm_XX or LLVM cpu) and LLVM feature switches."""

    device: Device
    arch: str
    features: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.device.value}:{self.arch}"

    def as_dict(self) -> dict:
        return {"name": str(self), "device": self.device.value, "arch": self.arch,
                "features": list(self.features), "tvm": str(self.to_tvm())}

    @classmethod
    def from_dict(cls, data: dict) -> TargetSpec:
        return cls(Device(data["device"]), str(data["arch"]), tuple(data["features"]))

    @property
    def is_gpu(self) -> bool:
        return self.device is Device.CUDA

    def to_tvm(self) -> tvm.target.Target:
        if self.device is Device.CUDA:
            return tvm.target.Target({"kind": "cuda", "arch": self.arch, **CUDA_LIMITS})
        config: dict = {"kind": "llvm", "mcpu": self.arch}
        if self.features:
            config["mattr"] = list(self.features)
        return tvm.target.Target(config)

    @property
    def native_bf16(self) -> bool:
        """Whether the CPU has bfloat16 dot products (AVX512_BF16 or AMX): where bf16 pays for itself."""
        return not self.is_gpu and bool({"avx512bf16", "amx-bf16"} & _llvm_features(self))

    @property
    def bf16_pairs(self) -> bool:
        """Whether the CPU has AVX512_BF16's `vdpbf16ps`, which stored bf16 convs compute with."""
        return not self.is_gpu and "avx512bf16" in _llvm_features(self)

    @property
    def vector_lanes(self) -> int:
        """float32 lanes of one SIMD register: what CPU schedules vectorize by."""
        return 4 if self.device is Device.CUDA else _llvm_lanes(self)


@cache
def _llvm_features(spec: TargetSpec) -> frozenset[str]:
    return frozenset(str(f) for f in codegen.llvm_get_cpu_features(spec.to_tvm()))


@cache
def _llvm_lanes(spec: TargetSpec) -> int:
    enabled = _llvm_features(spec)
    if "avx512f" in enabled:
        return 16
    return 8 if "avx" in enabled else 4


def _host_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    match = re.search(r"^flags\s*:(.*)$", cpuinfo.read_text(), re.MULTILINE)
    return set(match.group(1).split()) if match else set()


@cache
def host_cpu() -> TargetSpec:
    """The machine this process runs on, with the vector features it really allows."""
    cpu = codegen.llvm_get_system_cpu()
    flags = _host_flags()
    spec = TargetSpec(Device.LLVM, cpu)
    if not flags:
        return spec
    assumed = codegen.llvm_get_cpu_features(spec.to_tvm())
    hidden = tuple(f"-{f}" for f in _VECTOR_FEATURES if f in assumed and f not in flags)
    return TargetSpec(Device.LLVM, cpu, hidden)


def pool_threads() -> int:
    """The threads compiled CPU kernels share: TVM_NUM_THREADS when the user chose, else every CPU this
    process may use (runtime.py sets it so before TVM's pool starts, which would count physical cores)."""
    return int(os.environ.get("TVM_NUM_THREADS") or len(os.sched_getaffinity(0)))


def gpu_visible() -> bool:
    return bool(tvm.runtime.enabled("cuda")) and bool(tvm.cuda(0).exist)


def gpu_memory() -> int:
    """Bytes of global memory on the first CUDA GPU (only where `gpu_visible`)."""
    return int(tvm.cuda(0).total_global_memory)


def default_target() -> TargetSpec:
    return TargetSpec(Device.CUDA, DEFAULT_CUDA_ARCH) if gpu_visible() else host_cpu()


def parse_target(text: str | TargetSpec | None) -> TargetSpec:
    """`cuda`, `cuda:sm_90`, `llvm` or `llvm:CPU` into a TargetSpec; None means the default."""
    if text is None:
        return default_target()
    if isinstance(text, TargetSpec):
        return text
    kind, _, arch = text.strip().partition(":")
    try:
        device = Device(kind)
    except ValueError:
        raise CnnCompileError(f"unknown target '{text}'; use cuda, cuda:sm_XX, llvm or llvm:CPU") from None
    if device is Device.CUDA:
        arch = arch or DEFAULT_CUDA_ARCH
        if not re.fullmatch(r"sm_\d{2,3}[a-z]?", arch):
            raise CnnCompileError(f"unknown CUDA arch '{arch}' in target '{text}'; use e.g. cuda:sm_80 or cuda:sm_90")
        return TargetSpec(device, arch)
    if not arch:
        return host_cpu()
    if not codegen.llvm_is_valid_cpu(arch, codegen.llvm_get_system_triple()):
        raise CnnCompileError(f"LLVM does not know the cpu '{arch}' in target '{text}'; use llvm for this machine")
    return TargetSpec(device, arch)
