"""What a terminal shows while a model compiles or tunes: a one-line bar per compile stage, and
the tuner's bar with the count, the workload and an ETA.

Piped or redirected output (CI logs, `| tee`) gets no bar: a bar redrawn with carriage returns
turns a log into noise. A tuning run's summary line is printed either way.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from cnncompile.stages import Stage
from cnncompile.tuning.budget import format_duration

if TYPE_CHECKING:
    from cnncompile.tuning.progress import TuneStatus
    from cnncompile.tuning.tuner import TuneReport

WIDTH = 30


def bar(label: str, done: int, total: int) -> str:
    """`label     [#####.....] done/total`, the same width for every stage and the tuner."""
    filled = WIDTH * done // max(total, 1)
    return f"{label:<9} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}"


class ProgressBar:
    """Called as `progress(stage, done, total)`; redraws the current stage's bar in place."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.stage: Stage | None = None

    def __call__(self, stage: Stage, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage and self.stage is not None:
            self.stream.write("\n")
        self.stage = stage
        self.stream.write(f"\r{bar(stage.value, done, total)}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()
            self.stage = None


class TuneBar:
    """`tune      [######.....] 12/40 ETA 42s  1x64x56x56 -> 64 k3x3` on a terminal; the summary line always."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.drawn = False

    def __call__(self, status: TuneStatus) -> None:
        if not self.enabled:
            return
        line = (f"{bar('tune', status.done, status.total)} "
                f"ETA {format_duration(status.eta_seconds)}  {status.workload}")
        # the first draw starts a line of its own, below the compile stage's bar; \x1b[K clears a longer last one
        start = "\r" if self.drawn else "\n"
        self.stream.write(f"{start}{line}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def finish(self, report: TuneReport) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.stream.write(report.summary() + "\n")
        self.stream.flush()
