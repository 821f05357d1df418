"""The artifact directory: compiled library, JSON manifest, optimized graph as ONNX.

    DIR/model.so        the Relax VM executable with every kernel (`export_library`)
    DIR/manifest.json   inputs, outputs, target, pipeline, versions, hashes
    DIR/model.onnx      the optimized graph, fused nodes spelled out as standard ONNX

The directory is written beside its destination under a temporary name, flushed to disk and
swapped into place in one step (fileio.replace_directory), so a crash, a kill, a full disk or
a second compile writing the same directory leaves the old artifact or a new one, never a mix
and never none. The manifest holds
the library's sha256, checked before the library is loaded: a truncated or corrupted
shared object would otherwise crash the process inside dlopen rather than fail cleanly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.fileio import DiskFull, is_disk_full, replace_directory, signals_deferred, sync_directory

LIBRARY = "model.so"
MANIFEST = "manifest.json"
GRAPH = "model.onnx"
FORMAT = "cnncompile-artifact/1"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_artifact(directory: str | os.PathLike, fill: Callable[[Path], dict[str, Any]]) -> Path:
    """Create `directory` atomically: `fill(tmp)` writes the files and returns the manifest.

    An existing artifact at `directory` is replaced; any other existing path is refused,
    so compiling into the wrong folder never deletes someone's files.
    """
    target = Path(directory)
    if not _free_or_artifact(target):
        raise CnnCompileError(f"'{target}' exists and is not a cnncompile artifact; choose another -o directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, fill)
    except Exception as err:
        if is_disk_full(err):
            raise DiskFull(target, "choose another -o directory") from None
        raise
    return target


def _free_or_artifact(target: Path) -> bool:
    """Whether `target` is absent, an empty directory or an artifact. Other writers swap directories at
    `target` and delete the ones they replaced, so a listing can catch an artifact being deleted under
    another name: a listing counts only if `target` was the same directory before and after it."""
    while True:
        try:
            before = os.lstat(target).st_ino
            entries = os.listdir(target)
            if os.lstat(target).st_ino == before:
                return not entries or MANIFEST in entries
        except FileNotFoundError:
            return True
        except NotADirectoryError:
            return False


def _write(target: Path, fill: Callable[[Path], dict[str, Any]]) -> None:
    """Stage, swap, clean up, with Ctrl-C, SIGTERM and SIGHUP held back until the staging directory is
    gone. Delivered at once, one would stop Python waiting for TVM's linker but not the linker, which
    could then write into the directory being deleted; arriving before the swap, it cancels it."""
    with signals_deferred() as caught:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            manifest = fill(staging)
            manifest["format"] = FORMAT
            manifest["library_sha256"] = sha256_file(staging / LIBRARY)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            _ordinary_permissions(staging)
            sync_directory(staging)
            if not caught:
                replace_directory(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # the unfinished artifact, or the one just replaced


def _ordinary_permissions(staging: Path) -> None:
    """Temporary files are private (0600/0700); the artifact gets the modes the user's umask gives new files."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    for path in staging.iterdir():
        os.chmod(path, (0o777 if path.suffix == ".so" else 0o666) & ~umask)


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an artifact directory, after checking its files are there and intact."""
    root = Path(directory)
    if not root.is_dir():
        raise ModelError(f"'{root}' is not a compiled artifact directory (compile one with `cnncompile compile`)")
    for name in (MANIFEST, LIBRARY):
        if not (root / name).is_file():
            raise ModelError(f"artifact '{root}' is missing {name}; recompile it with `cnncompile compile`")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"artifact '{root}': {MANIFEST} is not valid JSON ({err}); recompile it") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"artifact '{root}': {MANIFEST} is not a {FORMAT} manifest; recompile it")
    if sha256_file(root / LIBRARY) != manifest.get("library_sha256"):
        raise ModelError(f"artifact '{root}': {LIBRARY} does not match the sha256 in its manifest "
                         "(corrupted or replaced); recompile it")
    return manifest


def is_artifact(path: str | os.PathLike) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()
