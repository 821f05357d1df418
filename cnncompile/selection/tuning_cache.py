"""The tuning cache: measured seconds per (conv workload, target, CPU threads, versions), in one JSON file.

    {"format": 1, "entries": {KEY: {"workload": {...ConvSpec...}, "target": "llvm -mcpu=znver4 ...",
                                    "threads": 2, "versions": {"cnncompile": "0.1.0", "tvm": "0.27.0"},
                                    "complete": true,
                                    "results": {"direct/NCHW8c/t2x1x4": {"seconds": 0.00012, "device": "local"},
                                                "fft/NCHW": {"error": "scheduling ... failed", "device": "local"}}}}}

A measurement only holds for the code that produced it, so the key carries the cnncompile
and TVM versions besides the workload and the full TVM target (with the vector features a
virtual machine hides): an upgrade never reuses a stale choice, and never deletes it either.
On a CPU it also carries the thread count kernels are built for (`pool_threads`, as TVM's
`num-cores` does for MetaSchedule): schedules split work by it, and the fastest candidate
on 2 threads need not be the fastest on 16. Over RPC that is this host's count, so start
the servers with the same TVM_NUM_THREADS.

Several processes may tune into one file at once (two compiles, or a compile per machine of
a build farm sharing a home directory). A writer takes an exclusive lock on FILE.lock,
re-reads the file, merges its entry into what is there, writes a temporary file beside it
and renames it over FILE: readers never see half a file and no writer's work is lost.

A file that does not parse (a truncated write from a crash, an edit by hand) is reported once
and treated as empty; it is moved aside to FILE.corrupt, never overwritten, before the next
write replaces it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tvm

from cnncompile.algorithms.applicability import ConvSpec
from cnncompile.backends.tvm.target import TargetSpec, pool_threads
from cnncompile.errors import CnnCompileError
from cnncompile.selection.candidates import Candidate
from cnncompile.version import __version__

FORMAT = 1


def default_cache_path() -> Path:
    """~/.cache/cnncompile/tuning.json, or under $XDG_CACHE_HOME when that is set."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "cnncompile" / "tuning.json"


@dataclass(frozen=True)
class Result:
    """One candidate's measurement: the median seconds of a run, or why it could not be built or run.

    `device` names what measured it ("local", or the RPC session's server)."""

    seconds: float | None
    device: str = "local"
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.seconds is not None

    def as_dict(self) -> dict:
        return {"seconds": self.seconds, "device": self.device} if self.ok else {"error": self.error,
                                                                                 "device": self.device}

    @classmethod
    def from_dict(cls, data: Mapping) -> Result:
        seconds = data.get("seconds")
        return cls(None if seconds is None else float(seconds), str(data.get("device", "")),
                   str(data.get("error", "")))


@dataclass(frozen=True)
class Measured:
    """A workload's measurements on one target: the fastest candidate and every candidate's seconds.

    `failed` maps candidates that did not build or run to the reason; `complete` is False when
    a budget stopped the run before every candidate was measured."""

    best: Candidate
    results: dict[Candidate, float]
    failed: dict[Candidate, str]
    devices: dict[Candidate, str]
    complete: bool


def workload_dict(spec: ConvSpec) -> dict:
    return {f.name: (getattr(spec, f.name).value if f.name == "dtype" else
                     list(v) if isinstance(v := getattr(spec, f.name), tuple) else v) for f in fields(ConvSpec)}


def target_key(target: TargetSpec) -> str:
    """The full TVM target, features included: llvm:znver4 with and without AVX-512 are different machines."""
    return str(target.to_tvm())


def threads_key(target: TargetSpec) -> int | None:
    """The threads CPU kernels are built for and run with; None on a GPU."""
    return None if target.is_gpu else pool_threads()


def versions() -> dict[str, str]:
    return {"cnncompile": __version__, "tvm": tvm.__version__}


def entry_key(spec: ConvSpec, target: TargetSpec) -> str:
    return json.dumps([workload_dict(spec), target_key(target), threads_key(target), versions()], sort_keys=True,
                      separators=(",", ":"))


def _warn_stderr(message: str) -> None:
    print(f"cnncompile: warning: {message}", file=sys.stderr)


class TuningCache:
    """The tuning cache file at `path` (created on the first store). `warn` receives one line per problem."""

    def __init__(self, path: str | os.PathLike | None = None, warn: Callable[[str], None] = _warn_stderr):
        self.path = Path(path) if path is not None else default_cache_path()
        self.warn = warn
        self._seen: tuple | None = None
        self._entries: dict[str, Any] = {}
        self._reported: set[tuple] = set()

    # -- reading --------------------------------------------------------------------------
    def _read(self) -> tuple[dict[str, Any], str | None]:
        """The file's entries and, when it does not parse as a cache, why (entries then empty)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}, None
        except OSError as err:
            return {}, f"cannot be read ({err.strerror})"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            return {}, f"is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}; truncated?)"
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
            return {}, f"is not a cnncompile tuning cache of format {FORMAT}"
        return data["entries"], None

    def _report(self, problem: str, identity: tuple) -> None:
        if identity not in self._reported:
            self._reported.add(identity)
            self.warn(f"tuning cache {self.path} {problem}; ignoring it (it is kept as {self.path}.corrupt "
                      f"when new results are stored; delete it to start afresh)")

    def _current(self) -> dict[str, Any]:
        """The entries on disk, re-read only when the file changed since the last read."""
        try:
            st = self.path.stat()
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self._seen or seen is None:
            entries, problem = self._read()
            if problem is not None:
                self._report(problem, seen or ())
            self._seen, self._entries = seen, entries
        return self._entries

    def lookup(self, spec: ConvSpec, target: TargetSpec) -> Measured | None:
        """The workload's measurements on `target` by these versions, if any candidate was measured."""
        entry = self._current().get(entry_key(spec, target))
        if not isinstance(entry, dict) or not isinstance(entry.get("results"), dict):
            return None
        results, failed, devices = {}, {}, {}
        for text, data in entry["results"].items():
            try:
                candidate, result = Candidate.parse(text), Result.from_dict(data)
            except (CnnCompileError, AttributeError, TypeError, ValueError):
                continue  # written by a cnncompile that knew other candidates: not ours to judge
            devices[candidate] = result.device
            if result.ok:
                results[candidate] = result.seconds
            else:
                failed[candidate] = result.error
        if not results:
            return None
        best = min(results, key=results.__getitem__)
        return Measured(best, results, failed, devices, bool(entry.get("complete")))

    def measured_candidates(self, spec: ConvSpec, target: TargetSpec) -> tuple[set[Candidate], bool]:
        """The candidates already measured (or failed) for the workload, and whether that run was complete."""
        entry = self._current().get(entry_key(spec, target))
        if not isinstance(entry, dict) or not isinstance(entry.get("results"), dict):
            return set(), False
        done = set()
        for text in entry["results"]:
            try:
                done.add(Candidate.parse(text))
            except CnnCompileError:
                continue
        return done, bool(entry.get("complete"))

    # -- writing --------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def store(self, spec: ConvSpec, target: TargetSpec, results: Mapping[Candidate, Result],
              complete: bool = True) -> None:
        """Merge `results` into the workload's entry on disk (theirs win over older ones for the same candidate)."""
        try:
            self._store(entry_key(spec, target), spec, target, results, complete)
        except OSError as err:
            raise CnnCompileError(f"cannot write the tuning cache {self.path}: {err.strerror or err}; "
                                  "give a writable file with --tuning-cache") from None
        self._seen = None

    def _store(self, key: str, spec: ConvSpec, target: TargetSpec, results: Mapping[Candidate, Result],
               complete: bool) -> None:
        with self._locked():
            entries, problem = self._read()
            if problem is not None:
                corrupt = self._aside()
                os.replace(self.path, corrupt)
                self.warn(f"tuning cache {self.path} {problem}; moved it to {corrupt} and started a new one")
            old = entries.get(key) if isinstance(entries.get(key), dict) else {}
            merged = dict(old.get("results", {})) if isinstance(old.get("results"), dict) else {}
            merged.update({str(c): r.as_dict() for c, r in results.items()})
            entries[key] = {"workload": workload_dict(spec), "target": target_key(target),
                            "threads": threads_key(target), "versions": versions(),
                            "complete": complete or bool(old.get("complete")), "results": merged}
            self._write({"format": FORMAT, "entries": entries})

    def _aside(self) -> Path:
        """FILE.corrupt, or FILE.corrupt.N when earlier ones are still there (each is someone's evidence)."""
        aside = Path(f"{self.path}.corrupt")
        number = 0
        while aside.exists():
            number += 1
            aside = Path(f"{self.path}.corrupt.{number}")
        return aside

    def _write(self, data: dict) -> None:
        """Write beside the file, then rename over it: a reader sees the old file or the new, never half."""
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(data, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
