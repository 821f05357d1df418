"""Running onnx's C++ passes where a crash cannot take cnncompile down with it.

onnx's shape inference trusts what the checker lets through: a Conv whose input has the
wrong rank, for one, makes onnx 1.21 abort the whole process (an out-of-range index
assertion in its C++), which no `except` can catch. So the checker, shape inference and
version converter run in a forked child (about 6 ms): its result or its error comes back
through a pipe, and a child that dies or hangs becomes an `OnnxCrash`. Where there is no
fork (Windows) the function simply runs in-process.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import selectors
import signal
import time
from collections.abc import Callable
from typing import TypeVar

from cnncompile.errors import ModelError

T = TypeVar("T")

TIMEOUT_S = 120.0


class OnnxCrash(ModelError):
    """onnx died or hung on the model: it is malformed in a way onnx does not report."""


def run_forked(function: Callable[..., T], *args, what: str, timeout_s: float = TIMEOUT_S) -> T:
    """`function(*args)` computed in a child process; its exception, if any, re-raised here."""
    if not hasattr(os, "fork"):
        return function(*args)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, report, and leave without running the parent's cleanup
        status = 1
        try:
            os.close(read_end)
            _silence_output()
            try:
                payload = pickle.dumps((True, function(*args)))
            except Exception as err:  # noqa: BLE001 - every failure travels to the parent
                payload = _pickled_error(err)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    data, finished = _read_all(read_end, time.monotonic() + timeout_s)
    if not finished:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not finished:
        raise OnnxCrash(f"onnx did not finish {what} within {timeout_s:.0f} s")
    if os.WIFSIGNALED(status) or not data:
        cause = signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else "no result"
        raise OnnxCrash(f"onnx crashed ({cause}) while {what}, so the model is malformed in a way onnx does not "
                        "report; check each node's input ranks and attributes against the ONNX spec")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value


def _silence_output() -> None:
    """Keep onnx's C++ messages (an assertion's text before an abort) and Python's fault
    handler's dump off the user's terminal: the parent reports the crash."""
    faulthandler.disable()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def _pickled_error(err: Exception) -> bytes:
    try:
        return pickle.dumps((False, err))
    except (pickle.PicklingError, TypeError, AttributeError):
        return pickle.dumps((False, RuntimeError(f"{err.__class__.__name__}: {err}")))


def _read_all(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to `fd` until the writer closes it, or what came by the deadline."""
    chunks = []
    with selectors.DefaultSelector() as selector, os.fdopen(fd, "rb", buffering=0) as pipe:
        selector.register(pipe, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return b"".join(chunks), False
            chunk = pipe.read(1 << 20)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
