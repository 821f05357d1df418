"""How long a tuning run may take: `--tune-budget 90s / 10m / 1h / 1h30m`, and the clock that keeps it.

A run stops starting measurements once the time left is less than one measurement is
expected to take (the mean so far), so it ends at most about one measurement late; the
workloads it did not reach keep the cost model's choice.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field

from cnncompile.errors import CnnCompileError

DEFAULT_BUDGET_SECONDS = 600.0
# What a first measurement is expected to cost before any has been timed (a build plus ~0.1 s of runs).
FIRST_GUESS_SECONDS = 0.5
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_duration(text: str) -> float:
    """Seconds of a duration written like 90s, 10m, 1h, 1h30m or 2.5m."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise CnnCompileError(f"--tune-budget '{text}' is not a duration; write a number with a unit: "
                              "90s, 10m, 1h or 1h30m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise CnnCompileError(f"--tune-budget '{text}' leaves no time to measure anything; give e.g. 10m")
    return seconds


def format_duration(seconds: float) -> str:
    """1h02m, 3m05s or 12s: what a progress line or summary shows."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class Budget:
    """The time a run may still spend, and what its measurements have cost so far."""

    seconds: float
    start: float = field(default_factory=time.monotonic)
    costs: list[float] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return self.seconds - self.elapsed()

    def expected_cost(self) -> float:
        """What the next measurement is expected to take: the mean so far (builds dominate, and vary little)."""
        return statistics.fmean(self.costs) if self.costs else FIRST_GUESS_SECONDS

    def allows_another(self) -> bool:
        return self.remaining() >= self.expected_cost()
