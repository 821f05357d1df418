"""What the tuner reports as it goes, and to whom: the terminal's bar is tools.progress.TuneBar,
a layer above, so that tuning knows nothing of how its progress is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

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
