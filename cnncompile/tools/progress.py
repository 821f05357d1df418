"""A one-line progress bar per compile stage, drawn only on a terminal.

Piped or redirected output (CI logs, `| tee`) gets nothing: a bar redrawn with carriage
returns turns a log into noise.
"""

from __future__ import annotations

import sys
from typing import TextIO

from cnncompile.stages import Stage

WIDTH = 30


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
        filled = WIDTH * done // max(total, 1)
        self.stream.write(f"\r{stage.value:<9} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()
            self.stage = None
