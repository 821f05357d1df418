"""SIGTERM and SIGHUP as Ctrl-C: a command stopped by `kill`, a closed terminal or a job scheduler
cleans up as one stopped by Ctrl-C does.

Python's default for SIGTERM and SIGHUP ends the process at once, so no `finally` runs: a
compile killed while saving leaves its staging directory beside the artifact, a tuning run
loses the measurements of the workload it was in. Raised as `Terminated` (a KeyboardInterrupt,
so code that stops cleanly on Ctrl-C needs nothing more), they unwind like Ctrl-C, and the
command line exits with 128 + the signal's number, as a shell reports a process it killed.

A signal that arrives ignored (`nohup`, a background job of a non-interactive shell) stays
ignored; after the first one, repeats are ignored until the command has unwound.
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


def _raise(signum: int, _frame: FrameType | None) -> None:
    """Raise once: a second SIGTERM (a supervisor repeating itself) must not cut short the cleanup
    the first one started. SIGKILL still ends a cleanup that hangs."""
    for sig in CAUGHT:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


@contextmanager
def termination_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Terminated (from the main thread only, where handlers
    can be set: elsewhere the block runs with Python's defaults)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in CAUGHT if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
