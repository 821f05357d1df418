"""Atomic file output: nothing is ever left written half-way.

Every artifact is written to a temporary file (or directory) beside its destination and
renamed into place, so a crash, a kill or a full disk leaves either the old one or the new
one. A full disk is a `DiskFull` error naming the destination, with the temporary removed.

A directory cannot be renamed over a non-empty one, so `replace_directory` swaps the two
with renameat2(RENAME_EXCHANGE): one system call, hence no moment at which the destination
is missing, whatever kills the process and however many writers race for the same path
(each swap leaves a whole directory there; the last one stays). Filesystems without it (NFS,
some FUSE) take two renames under an flock on `.NAME.lock` beside the destination, with
SIGINT, SIGTERM and SIGHUP held back between them.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnncompile.errors import CnnCompileError

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
# What renameat2 answers where the kernel, libc or filesystem cannot exchange.
_NO_EXCHANGE = frozenset({errno.ENOSYS, errno.EINVAL, errno.ENOTSUP})
_DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DiskFull(CnnCompileError):
    """The filesystem (or the user's quota) ran out of space while writing `path`."""

    def __init__(self, path: str | os.PathLike, elsewhere: str = "write it elsewhere"):
        super().__init__(f"no space left on device writing {path}; free space or {elsewhere} "
                         "(nothing was written, what was there is unchanged)")


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC or EDQUOT, from a write of ours or in the words of a tool that hit it (TVM's linker)."""
    if isinstance(err, DiskFull) or isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(words in str(err) for words in ("No space left on device", "Disk quota exceeded"))


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    target = Path(path)
    if not target.parent.exists():
        raise CnnCompileError(f"cannot write '{target}': directory '{target.parent}' does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        if is_disk_full(err):
            raise DiskFull(target) from None
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise DiskFull(target) from None
        raise
    return target


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    return write_atomically(path, lambda handle: np.savez(handle, **arrays))


def sync_directory(directory: Path) -> None:
    """fsync every file in `directory`, then the directory: some filesystems (NFS, XFS) report a full
    disk only when the data reaches it, and that must happen before the directory is renamed into place."""
    for path in directory.iterdir():
        _fsync(path)
    _fsync(directory)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_directory(new: Path, target: Path) -> None:
    """Put the directory `new` at `target` in one step; what `target` held ends at `new`, for the caller
    to delete (nothing is at `new` when `target` did not exist)."""
    try:
        while not _exchanged(new, target):  # no target: take its place, unless another writer just did
            try:
                _renameat2(new, target, _RENAME_NOREPLACE)
                return
            except FileExistsError:
                continue  # then exchange with the one that arrived
    except OSError as err:
        if err.errno not in _NO_EXCHANGE:
            raise
        _replace_under_lock(new, target)  # NFS and some FUSE filesystems refuse either flag


def _exchanged(new: Path, target: Path) -> bool:
    """Whether `new` and `target` were swapped; False when there is no `target`."""
    try:
        _renameat2(new, target, _RENAME_EXCHANGE)
    except FileNotFoundError:
        return False
    return True


@functools.cache
def _libc_renameat2() -> Callable[..., int] | None:
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


def _renameat2(source: Path, target: Path, flags: int) -> None:
    function = _libc_renameat2()
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not in this C library", str(source))
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(source), None, str(target))


def _replace_under_lock(new: Path, target: Path) -> None:
    """The two-rename swap, one writer at a time, and never stopped by a signal half-way."""
    with open(target.parent / f".{target.name}.lock", "a") as lock, signals_deferred():
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            os.rename(new, target)
            return
        retired = new.with_name(new.name + ".old")
        os.rename(target, retired)
        os.rename(new, target)
        os.rename(retired, new)


@contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block ends, then deliver them as they would have been;
    the block sees the list of those that arrived, to decide not to finish what it was doing.

    Blocking them with sigmask is not enough: a thread of TVM's pool may take the signal, and Python
    runs its handler in the main thread anyway. Only the main thread can install handlers; elsewhere
    the block runs unguarded."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {sig: signal.signal(sig, lambda number, _frame: caught.append(number))
                for sig in _DEFERRED if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(caught):
            os.kill(os.getpid(), sig)
