"""`validate --determinism`: the same model compiled twice, run again, and run on a batch of equal rows
gives the same bytes each time.

Users of the peers find identical builds giving different results and rows of a batch differing for
identical inputs (TensorRT #4730, #3316, #4813; onnxruntime #4611); three checks say whether this
build does:

* artifacts: two compiles, each saved to its own temporary directory, hold the same files with the
  same bytes. No file is excluded: the manifest records no time, host path or random name (only the
  source, its hash, the target, signature, memory estimate, kernels and versions), so any difference
  is a real one and is named by file.
* runs: REPEATS runs on one input set give bit-identical outputs (compared as bytes, so NaNs and
  signed zeros count too).
* batch rows: the model re-imported with its inputs' first dimension bound to BATCH (through its
  ONNX form, which declares that dimension dynamic) and compiled so, run on one row repeated BATCH
  times, gives BATCH identical rows in every output. A model whose graph fixes its batch (a Reshape
  to a constant shape) cannot be re-batched: the check is skipped, saying why.
"""

from __future__ import annotations

import enum
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnncompile.api import compile as compile_model
from cnncompile.compiled import CompiledModel
from cnncompile.errors import CnnCompileError
from cnncompile.frontends.onnx import load_onnx
from cnncompile.frontends.onnx_export import to_onnx
from cnncompile.ir.graph import Graph
from cnncompile.tools.inputs import InputSet
from cnncompile.tools.validate import ValidateOptions

REPEATS = 3
BATCH = 4


class CheckKind(enum.Enum):
    ARTIFACTS = "two compiles give byte-identical artifacts"
    RUNS = "repeated runs give bit-identical outputs"
    BATCH_ROWS = "a batch of identical rows gives identical output rows"


@dataclass(frozen=True)
class Check:
    """One check's outcome; `passed` None when it could not be made (`detail` says why)."""

    kind: CheckKind
    passed: bool | None
    detail: str

    def as_dict(self) -> dict:
        return {"check": self.kind.name.lower(), "what": self.kind.value, "passed": self.passed,
                "detail": self.detail}

    def __str__(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "SKIPPED"}[self.passed]
        return f"{verdict}  {self.kind.value}: {self.detail}"


@dataclass(frozen=True)
class Determinism:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    def as_dict(self) -> dict:
        return {"passed": self.passed, "checks": [c.as_dict() for c in self.checks]}

    def report(self) -> str:
        lines = ["determinism:", *(f"  {c}" for c in self.checks)]
        return "\n".join(lines)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def artifacts_identical(build: Callable[[], CompiledModel]) -> Check:
    """Whether two models from `build()`, saved, hold the same files byte for byte."""
    with tempfile.TemporaryDirectory(prefix="cnncompile-determinism-") as scratch:
        first = _files(build().save(Path(scratch) / "first"))
        second = _files(build().save(Path(scratch) / "second"))
    differ = sorted(name for name in first.keys() | second.keys() if first.get(name) != second.get(name))
    if differ:
        return Check(CheckKind.ARTIFACTS, False, f"{', '.join(differ)} differ between the two compiles")
    return Check(CheckKind.ARTIFACTS, True, f"{len(first)} files identical ({', '.join(first)})")


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def runs_identical(model: CompiledModel, inputs: InputSet, repeats: int = REPEATS) -> Check:
    """Whether `repeats` runs of `model` on `inputs` give the same bytes in every output."""
    first = model.run(inputs)
    for run in range(2, repeats + 1):
        again = model.run(inputs)
        differ = sorted(name for name in first if not _same_bytes(first[name], again[name]))
        if differ:
            return Check(CheckKind.RUNS, False, f"run {run} differs from run 1 in {', '.join(differ)}")
    return Check(CheckKind.RUNS, True, f"{repeats} runs bit-identical")


def rebatched(graph: Graph, batch: int) -> Graph:
    """`graph` re-imported with every input's first dimension bound to `batch`."""
    model = to_onnx(graph)
    del model.graph.value_info[:]
    for value in model.graph.output:
        value.type.tensor_type.ClearField("shape")
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = "batch"
    shapes = {v.name: (batch, *v.type.shape[1:]) for v in graph.inputs}
    return load_onnx(model, shapes)


def rows_identical(graph: Graph, compile_for: Callable[[Graph], CompiledModel], inputs: InputSet,
                   batch: int = BATCH) -> Check:
    """Whether `graph` compiled for `batch` rows gives equal rows on the first row of `inputs` repeated."""
    try:
        batched = rebatched(graph, batch)
    except CnnCompileError as err:
        return Check(CheckKind.BATCH_ROWS, None, f"the model cannot be re-batched ({str(err).splitlines()[0]})")
    rows: Mapping[str, np.ndarray] = {name: np.repeat(np.asarray(a)[:1], batch, axis=0) for name, a in inputs.items()}
    outputs = compile_for(batched).run(rows)
    unbatched = sorted(name for name, out in outputs.items() if out.ndim == 0 or out.shape[0] != batch)
    if unbatched:
        return Check(CheckKind.BATCH_ROWS, None, f"outputs {', '.join(unbatched)} have no batch of {batch} rows")
    differ = {name: [i for i in range(1, batch) if not _same_bytes(out[i], out[0])] for name, out in outputs.items()}
    differ = {name: rows for name, rows in differ.items() if rows}
    if differ:
        said = "; ".join(f"{name}: rows {', '.join(map(str, r))} differ from row 0" for name, r in differ.items())
        return Check(CheckKind.BATCH_ROWS, False, said)
    return Check(CheckKind.BATCH_ROWS, True, f"{batch} identical rows in, {batch} bit-identical rows out")


def determinism(graph: Graph, options: ValidateOptions, inputs: InputSet) -> Determinism:
    """The three checks on `graph` compiled as `options` say (see the module docstring)."""

    def compile_for(model: Graph) -> CompiledModel:
        return compile_model(model, options.target, options.pipeline, memory_limit=options.memory_limit,
                             precision=options.precision, keep_fp32=options.keep_fp32)

    model = compile_for(graph)
    return Determinism((artifacts_identical(lambda: compile_for(graph)), runs_identical(model, inputs),
                        rows_identical(graph, compile_for, inputs)))
