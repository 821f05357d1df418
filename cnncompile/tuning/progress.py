"""What a tuning run shows: a bar with the count, the workload and an ETA on a terminal; one summary line.

As with the compile stages' bar (tools/progress.py), a bar redrawn with carriage returns is
drawn only on a terminal; a log gets the summary line alone.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from cnncompile.tools.progress import WIDTH
from cnncompile.tuning.budget import format_duration

if TYPE_CHECKING:
    from cnncompile.tuning.tuner import TuneReport


@dataclass(frozen=True)
class TuneStatus:
    """Where a run stands: measurements done of those planned, the workload being measured, time left."""

    done: int
    total: int
    workload: str
    eta_seconds: float


class TuneProgress(Protocol):
    def __call__(self, status: TuneStatus) -> None: ...

    def finish(self, report: TuneReport) -> None: ...


class Silent:
    """Progress when nobody is watching."""

    def __call__(self, status: TuneStatus) -> None:
        pass

    def finish(self, report: TuneReport) -> None:
        pass


class TuneBar:
    """`tune [######.....] 12/40 ETA 42s  1x64x56x56 -> 64 k3x3` on a terminal; the summary line always."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.drawn = False

    def __call__(self, status: TuneStatus) -> None:
        if not self.enabled:
            return
        filled = WIDTH * status.done // max(status.total, 1)
        bar = (f"tune      [{'#' * filled}{'.' * (WIDTH - filled)}] {status.done}/{status.total} "
               f"ETA {format_duration(status.eta_seconds)}  {status.workload}")
        # the first draw starts a line of its own, below the compile stage's bar; \x1b[K clears a longer last one
        start = "\r" if self.drawn else "\n"
        self.stream.write(f"{start}{bar}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def finish(self, report: TuneReport) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.stream.write(report.summary() + "\n")
        self.stream.flush()
