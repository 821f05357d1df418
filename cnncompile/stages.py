"""The stages of a compile, in the order `cnncompile.compile` runs them and reports its progress.

Kept apart from api.py, which imports TVM, so that what only draws progress (tools, the
CLI) can name a stage without paying for the backend.
"""

from __future__ import annotations

import enum


class Stage(enum.Enum):
    """A compile stage; its value is the word a progress bar shows for it."""

    IMPORT = "import"
    PASSES = "passes"
    LOWERING = "lowering"
    BUILD = "build"
