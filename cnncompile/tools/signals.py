"""SIGTERM and SIGHUP as Ctrl-C: a command stopped by `kill`, a closed terminal or a job scheduler
cleans up as one stopped by Ctrl-C does.

Python's default for SIGTERM and SIGHUP ends the process at once, so no `finally` runs: a
compile killed while saving leaves its staging directory beside the artifact, a tuning run
loses the measurements of the workload it was in. Raised as `Terminated` (a KeyboardInterrupt,
so code that stops cleanly on Ctrl-C needs nothing more), they unwind like Ctrl-C, and the
command line exits with 128 + the signal's number, as a shell reports a process it killed.

Ctrl-C is raised by the same handler, which remembers what it raised: an interrupt that lands in
a Python callback of TVM's compiler leaves it as a RuntimeError, and is raised again as itself.

A signal that arrives ignored (`nohup`, a background job of a non-interactive shell) stays
ignored; after the first SIGTERM or SIGHUP, repeats are ignored until the command has unwound.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

CAUGHT = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """A SIGTERM or SIGHUP, raised in the main thread wherever it was."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def describe(interrupt: KeyboardInterrupt) -> str:
    return f"terminated by {signal.Signals(interrupt.signum).name}" if isinstance(interrupt, Terminated) \
        else "interrupted"


class _Raiser:
    """The handler of SIGINT, SIGTERM and SIGHUP within `termination_as_interrupt`, remembering what it raised.

    An interrupt raised inside a Python callback of TVM's compiler (its TIR pipeline is one) comes out
    of the compiler as a bare RuntimeError: TVM's FFI keeps the message, not the type. What the
    handler raised is kept here, so the block can raise it again in the compiler's error's place."""

    def __init__(self) -> None:
        self.raised: KeyboardInterrupt | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        """A second SIGTERM (a supervisor repeating itself) must not cut short the cleanup the first one
        started, so after one, SIGTERM and SIGHUP are ignored; SIGKILL still ends a cleanup that hangs.
        Ctrl-C raises each time, as Python's own handler does."""
        if signum in CAUGHT:
            for sig in CAUGHT:
                signal.signal(sig, signal.SIG_IGN)
        self.raised = KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)
        raise self.raised


@contextmanager
def termination_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Terminated and Ctrl-C KeyboardInterrupt, even from
    inside TVM's compiler (main thread only, where handlers can be set: elsewhere the block runs with
    Python's defaults). A signal that arrives ignored stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raiser = _Raiser()
    previous = {sig: signal.signal(sig, raiser) for sig in (signal.SIGINT, *CAUGHT)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    except Exception:
        if raiser.raised is not None:  # whatever TVM made of the interrupt on its way out
            raise raiser.raised from None
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
