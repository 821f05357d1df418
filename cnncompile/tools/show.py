"""`cnncompile show`: a model's graph as one self-contained SVG file (tools/report.py draws it), as
imported or after a pipeline, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from cnncompile.errors import CnnCompileError
from cnncompile.fileio import write_atomically
from cnncompile.ir.graph import Graph
from cnncompile.tools.report import graph_svg

SUFFIX = ".svg"


def svg_path(path: str | os.PathLike) -> Path:
    """`path`, refused unless its name ends in .svg (the only format drawn), so a typo never leaves a file
    of the wrong kind under a misleading name."""
    target = Path(path)
    if target.suffix.lower() != SUFFIX:
        raise CnnCompileError(f"show draws SVG only, but '{target}' ends in '{target.suffix or '(no suffix)'}': "
                              f"name the output FILE{SUFFIX}")
    return target


def write_svg(path: str | os.PathLike, svg: str) -> Path:
    """`svg` written atomically at `path` (FILE.svg)."""
    target = svg_path(path)
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n' + svg + "\n").encode()
    return write_atomically(target, lambda handle: handle.write(text))


def show(graph: Graph, path: str | os.PathLike) -> Path:
    """Draw `graph` into `path` (FILE.svg)."""
    return write_svg(path, graph_svg(graph))
