"""The package's layers: a module imports only from its own layer or the layers before it, and
frontends, passes and backends, side by side, never import one another.

    ir <- algorithms <- ops <- {frontends, passes, backends} <- selection <- tuning <- api <- tools <- cli

Every `import` of a module counts, wherever it is written (inside a function, under
TYPE_CHECKING): a lazy import is still a dependency. The checker reads source only, so it
imports nothing it checks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "cnncompile"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# Left to right. A name is a top-level module or subpackage of cnncompile; `cnncompile` is the
# package itself (its __init__, the public surface beside api.py).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "version"),          # what every layer may raise or report
    ("fileio",),                    # atomic writes
    ("ir",),
    ("resources",),                 # the memory a graph needs against the limit
    ("algorithms",),                # the conv algorithms and the window arithmetic, in NumPy
    ("ops",),
    ("numerics",),                  # the error measure and tolerances, per algorithm
    ("frontends", "passes", "backends"),
    ("selection",),
    ("tuning",),
    ("buckets",),                   # batch buckets: one artifact for several batch sizes
    ("api", "compiled", "stages", "zoo", PACKAGE),
    ("tools", "onnx_backend"),
    ("cli",),
)
# Layers whose members must not import one another.
SIBLINGS = frozenset({("frontends", "passes", "backends")})

@dataclass(frozen=True)
class Violation:
    importer: str
    imported: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}: {self.why}"


def component(module: str) -> str:
    """cnncompile.passes.layout -> passes; cnncompile -> cnncompile."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def layer_of(name: str) -> int | None:
    return next((i for i, layer in enumerate(LAYERS) if name in layer), None)


def imports(module: str, source: str, is_package: bool, known: set[str]) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every import of a module of the package in `source`.

    `from X import name` imports X.name where that is a module of the package (`known`), else X."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                yield target, node.lineno


def check(sources: Mapping[str, tuple[str, bool]]) -> list[Violation]:
    """Every import that breaks LAYERS among `sources`: module name -> (its source, whether it is a package)."""
    found = []
    for module, (source, is_package) in sources.items():
        mine = component(module)
        here = layer_of(mine)
        if here is None:
            found.append(Violation(module, "", 0, f"'{mine}' is in no layer of tests/test_layering.py: add it"))
            continue
        for imported, line in imports(module, source, is_package, set(sources)):
            theirs = component(imported)
            there = layer_of(theirs)
            if theirs == mine:
                continue
            if there is None:
                found.append(Violation(module, imported, line, f"'{theirs}' is in no layer"))
            elif there > here:
                found.append(Violation(module, imported, line, f"{mine} may not import {theirs}, a layer above it"))
            elif there == here and LAYERS[here] in SIBLINGS:
                found.append(Violation(module, imported, line, f"{mine} and {theirs} are side by side: neither "
                                                               "may import the other"))
    return found


def package_sources(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    sources = {}
    for path in sorted(root.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        sources[".".join(parts[:-1] if is_package else parts)] = (path.read_text(), is_package)
    return sources


def test_the_package_keeps_its_layers():
    found = [str(v) for v in check(package_sources())]
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_every_subpackage_is_a_package():
    """A folder of modules without __init__.py is a namespace package, which setuptools' find leaves out."""
    folders = {p.parent for p in ROOT.rglob("*.py")} - {ROOT}
    assert not sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists())


def synthetic(module: str, source: str, *others: str) -> list[str]:
    """The violations of `module` (source given) among empty modules `others`."""
    sources = {name: ("", False) for name in others}
    sources[module] = (source, False)
    return [str(v) for v in check(sources)]


@pytest.mark.parametrize("module, source, others, why", [
    ("cnncompile.passes.pipelines", "from cnncompile.selection.options import select_pass",
     ["cnncompile.selection.options"], "passes may not import selection, a layer above it"),
    ("cnncompile.backends.tvm.default", "from cnncompile.frontends.onnx_export import to_onnx",
     ["cnncompile.frontends.onnx_export"], "backends and frontends are side by side"),
    ("cnncompile.tuning.tuner", "import cnncompile", [], "tuning may not import cnncompile"),
    ("cnncompile.tuning.tuner", "from cnncompile import api", ["cnncompile.api"], "tuning may not import api"),
    ("cnncompile.passes.manager", "def f():\n    from ..selection import select\n", ["cnncompile.selection.select"],
     "passes may not import selection"),
    ("cnncompile.ir.graph", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cnncompile.ops import X\n",
     ["cnncompile.ops"], "ir may not import ops"),
    ("cnncompile.algorithms.reference", "from cnncompile.ops.conv import Conv", ["cnncompile.ops.conv"],
     "algorithms may not import ops"),
    ("cnncompile.gadgets", "", [], "'gadgets' is in no layer"),
])
def test_the_checker_finds_an_import_against_the_layers(module, source, others, why):
    (found,) = synthetic(module, source, *others)
    assert why in found


@pytest.mark.parametrize("module, source, others", [
    ("cnncompile.passes.layout", "from cnncompile.ir.graph import Graph\nfrom cnncompile.errors import E",
     ["cnncompile.ir.graph", "cnncompile.errors"]),
    ("cnncompile.selection.options", "from cnncompile.backends.tvm.target import parse_target",
     ["cnncompile.backends.tvm.target"]),
    ("cnncompile.passes.cleanup", "from cnncompile.passes import pattern as P\nfrom . import rewrite",
     ["cnncompile.passes", "cnncompile.passes.pattern", "cnncompile.passes.rewrite"]),
    ("cnncompile.cli", "import cnncompile\nfrom cnncompile.tools import compare", ["cnncompile.tools.compare"]),
    ("cnncompile.api", "import numpy\nimport tvm", []),
])
def test_the_checker_lets_an_import_in_order_pass(module, source, others):
    assert synthetic(module, source, *others) == []
