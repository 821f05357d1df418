"""Atomic file output: nothing is ever left written half-way.

Every artifact is written to a temporary file beside its destination and renamed into
place, so a crash or a full disk leaves either the old file or the new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnncompile.errors import CnnCompileError


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    target = Path(path)
    if not target.parent.exists():
        raise CnnCompileError(f"cannot write '{target}': directory '{target.parent}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    return write_atomically(path, lambda handle: np.savez(handle, **arrays))
