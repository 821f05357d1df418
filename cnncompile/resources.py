"""The memory a model needs against the memory it may use: refused before anything is allocated.

A model that declares a multi-terabyte activation, or dims whose product passes 64 bits,
would otherwise fail deep inside TVM (an int32 literal check), in NumPy (a MemoryError
halfway through a run), or push the machine into swap. So before a build and before a run
the bytes are estimated from the graph: its weights, the peak of the activations live at
once (the liveness plan, in graph order) and the largest kernel workspace beside them (the
conv plans' im2col matrices, Winograd tiles, FFT spectra). Every size is a Python integer,
so no product of dims overflows. The limit is the memory this machine has available (or
a GPU's memory), unless the caller gives one (`--memory-limit`, `memory_limit=`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cnncompile.errors import ResourceError
from cnncompile.ir.graph import Graph, Value
from cnncompile.ir.liveness import plan_memory
from cnncompile.ir.types import DType

FLAG = "--memory-limit"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:I?B)?\s*$", re.IGNORECASE)


def format_bytes(count: int) -> str:
    """Binary units, three significant figures: '1.5 KiB', '47.7 GiB', '12 TiB', '832 B'."""
    if count < 1024:
        return f"{count} B"
    exponent = min((count.bit_length() - 1) // 10, 6)
    value = count / 1024 ** exponent
    unit = "KMGTPE"[exponent - 1] + "iB"
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run holds at its peak: the weights, the activations then live, the kernel's workspace."""

    weights: int
    activations: int
    workspace: int
    peak_node: str  # the node running at the peak ("" for a graph of inputs alone)

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.workspace

    def describe(self) -> str:
        at = f" while node '{self.peak_node}' runs" if self.peak_node else ""
        return (f"{format_bytes(self.total)} (weights {format_bytes(self.weights)}, activations "
                f"{format_bytes(self.activations)}{at}, workspace {format_bytes(self.workspace)})")

    def as_dict(self) -> dict[str, int | str]:
        return {"weights_bytes": self.weights, "activation_bytes": self.activations,
                "workspace_bytes": self.workspace, "peak_node": self.peak_node}

    @classmethod
    def from_dict(cls, data: Mapping) -> MemoryEstimate:
        return cls(int(data["weights_bytes"]), int(data["activation_bytes"]), int(data["workspace_bytes"]),
                   str(data["peak_node"]))


def estimate_memory(graph: Graph, workspace: Mapping[str, int] | None = None,
                    compute: DType | None = None) -> MemoryEstimate:
    """The peak of a run of `graph` in node order; `workspace` by node name (none: no kernel's is known yet).

    `compute` prices every float value as that type, as the NumPy reference computes in float64.
    """
    def size(value: Value) -> int:
        dtype = compute if compute is not None and value.type.dtype.is_float else value.type.dtype
        return value.type.numel * dtype.itemsize

    workspace = workspace or {}
    plan = plan_memory(graph, size)
    peak, peak_node, extra = plan.peak_bytes, plan.peak_node, 0
    for node, live in zip(graph.nodes, plan.live_bytes):
        needed = workspace.get(node.name, 0)
        if live + needed > peak + extra:
            peak, peak_node, extra = live, node.name, needed
    return MemoryEstimate(sum(size(v) for v in graph.constants), peak, extra, peak_node)


@dataclass(frozen=True)
class MemoryLimit:
    """At most `bytes` (None: no limit), and where that number came from, for the message."""

    bytes: int | None
    source: str

    @classmethod
    def parse(cls, text: str) -> MemoryLimit:
        """A size as `--memory-limit` takes it: bytes, or with K, M, G, T or P (powers of 1024); 'none' for no limit."""
        if text.strip().lower() in ("none", "off", "unlimited"):
            return cls(None, f"{FLAG} none")
        match = _SIZE.match(text)
        if match is None:
            raise ResourceError(f"{FLAG} '{text}' is not a size: give bytes or a number with K, M, G, T or P "
                                "(e.g. 16G, 1.5T), or 'none' for no limit")
        return cls(int(float(match.group(1)) * _UNITS[match.group(2).upper()]), f"{FLAG} {text.strip()}")

    @classmethod
    def available_here(cls) -> MemoryLimit:
        return cls(available_memory(), "the memory available on this machine")

    def check(self, estimate: MemoryEstimate, doing: str) -> None:
        """Raise unless `estimate` fits; `doing` says what was about to happen ('running model.onnx')."""
        if self.bytes is None or estimate.total <= self.bytes:
            return
        raise ResourceError(
            f"{doing} needs an estimated {estimate.describe()}, more than the {format_bytes(self.bytes)} of "
            f"{self.source}; raise the limit with {FLAG} SIZE (e.g. {FLAG} {_next_size(estimate.total)}) "
            "if the memory is there, or bind smaller inputs with --input-shape")


def host_limit(limit: int | str | None = None) -> MemoryLimit:
    """`limit` (bytes, or a size as --memory-limit takes it), else the memory available on this machine."""
    if isinstance(limit, str):
        return MemoryLimit.parse(limit)
    if limit is not None:
        return MemoryLimit(int(limit), f"memory_limit={limit}")
    return MemoryLimit.available_here()


def _next_size(count: int) -> str:
    """The smallest whole size in the largest fitting unit that holds `count` bytes: a limit to paste."""
    unit = max((u for u, scale in _UNITS.items() if scale <= count), key=_UNITS.get)
    return f"{-(-count // _UNITS[unit])}{unit}"


def available_memory() -> int:
    """Bytes this process could allocate now: the kernel's MemAvailable, capped by a cgroup's limit."""
    found = []
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not found and hasattr(os, "sysconf"):
        found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return max(min(found), 0) if found else 1 << 62
