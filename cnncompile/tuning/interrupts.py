"""Telling a candidate that failed from one whose build was interrupted.

Ctrl-C (or SIGTERM, as the command line raises it) that lands in a Python callback of TVM's
compiler comes out of the compiler as a bare RuntimeError: TVM's FFI keeps the traceback but
not the type. The measuring loop would then store the candidate being built as "build failed",
and a resumed run, which skips what the cache holds, would never measure it. While `watching`,
the handlers of SIGINT, SIGTERM and SIGHUP note what they raise, so the loop can raise that
instead of storing a failure.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

WATCHED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

Handler = Callable[[int, FrameType | None], object]


@dataclass
class Interrupts:
    raised: BaseException | None = None

    def check(self) -> None:
        """Raise the interrupt that arrived, if one did (whatever TVM made of it on the way out)."""
        if self.raised is not None:
            raise self.raised

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Wrap the Python handlers of WATCHED (main thread only: elsewhere handlers cannot be set)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        wrapped = {sig: (handler, self._noting(handler)) for sig in WATCHED
                   if callable(handler := signal.getsignal(sig))}
        for sig, (_, noting) in wrapped.items():
            signal.signal(sig, noting)
        try:
            yield
        finally:
            for sig, (handler, noting) in wrapped.items():
                if signal.getsignal(sig) is noting:  # a handler that replaced itself (to ignore repeats) stays
                    signal.signal(sig, handler)

    def _noting(self, handler: Handler) -> Handler:
        def noting(signum: int, frame: FrameType | None) -> object:
            try:
                return handler(signum, frame)
            except BaseException as err:
                self.raised = err
                raise

        return noting
