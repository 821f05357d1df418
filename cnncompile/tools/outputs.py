"""`validate --save-outputs` / `--load-outputs`: a run's inputs and outputs in one .npz, to compare runs made
on different machines.

The file holds `input/NAME` and `output/NAME` arrays, each stacked over the input sets (a leading axis of
S), and `meta`, a JSON string: the format version, the model it came from, S, and the sha256 of every
array's bytes. Loading checks that digest, so a file changed or cut short after it was written is
refused rather than compared; it is written to a temporary name and renamed (fileio).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnncompile.errors import ModelError
from cnncompile.fileio import save_arrays

FORMAT = 1
INPUT, OUTPUT = "input/", "output/"


@dataclass(frozen=True)
class SavedRun:
    """The input sets a run was given and the outputs it gave for each, as `save_run` wrote them."""

    model: str
    inputs: list[dict[str, np.ndarray]]
    outputs: list[dict[str, np.ndarray]]


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    """Over names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _stacked(prefix: str, sets: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {prefix + name: np.stack([np.asarray(s[name]) for s in sets]) for name in sets[0]}


def save_run(path: str | Path, model: str, inputs: Sequence[Mapping[str, np.ndarray]],
             outputs: Sequence[Mapping[str, np.ndarray]]) -> Path:
    arrays = {**_stacked(INPUT, inputs), **_stacked(OUTPUT, outputs)}
    meta = {"format": FORMAT, "model": model, "sets": len(inputs), "sha256": _digest(arrays)}
    return save_arrays(path, {**arrays, "meta": np.array(json.dumps(meta))})


def load_run(path: str | Path) -> SavedRun:
    """What `save_run` wrote; a ModelError for a file that is not one, or was changed since."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ModelError(f"--load-outputs '{path}': cannot read it ({err}); give a file `validate --save-outputs` "
                         "wrote") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
        sets, model, digest = int(meta["sets"]), str(meta["model"]), meta["sha256"]
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"--load-outputs '{path}' has no readable 'meta' entry: it was not written by "
                         "`validate --save-outputs`") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"--load-outputs '{path}' is format {meta.get('format')}; this cnncompile reads {FORMAT}")
    if _digest(arrays) != digest:
        raise ModelError(f"--load-outputs '{path}' does not match the checksum it was written with: it was changed "
                         "or cut short since; save the outputs again")

    def unstack(prefix: str) -> list[dict[str, np.ndarray]]:
        named = {name[len(prefix):]: a for name, a in arrays.items() if name.startswith(prefix)}
        return [{name: a[i] for name, a in named.items()} for i in range(sets)]

    return SavedRun(model, unstack(INPUT), unstack(OUTPUT))
