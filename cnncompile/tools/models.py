"""What the commands read besides the model (cnncompile.frontends.load): input shapes, input arrays, the
light models onnx ships."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.ir.graph import Graph

_SIZES = r"\d+(,\d+)*"
_SHAPE = re.compile(rf"^(?P<name>[^=]+)=(?P<dims>{_SIZES}(x{_SIZES})*)$")


def parse_input_shape(text: str) -> tuple[str, tuple[int | tuple[int, ...], ...]]:
    """'data=1x3x224x224' -> ('data', (1, 3, 224, 224)); a dim may list sizes, the batch buckets of
    `compile` (cnncompile.buckets): 'data=1,4,16x3x224x224' -> ('data', ((1, 4, 16), 3, 224, 224))."""
    match = _SHAPE.match(text.strip())
    # 'data=1,3,8,8' is a shape written with commas, not a rank-1 input's batch buckets
    if not match or "x" not in match["dims"] and "," in match["dims"]:
        raise CnnCompileError(f"--input-shape '{text}' is not NAME=DxDx... (a dim may list batch sizes: D,D,D); "
                              "e.g. --input-shape data=1x3x224x224 or data=1,4,16x3x224x224")
    dims = [tuple(int(s) for s in d.split(",")) for d in match["dims"].split("x")]
    return match["name"], tuple(d[0] if len(d) == 1 else d for d in dims)


def random_inputs(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard-normal floats (and small non-negative ints) for every graph input."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for value in graph.inputs:
        dtype = value.type.dtype.numpy
        if value.type.dtype.is_float:
            arrays[value.name] = rng.standard_normal(value.type.shape).astype(dtype)
        else:
            arrays[value.name] = rng.integers(0, 4, value.type.shape).astype(dtype)
    return arrays


def load_inputs(graph: Graph, specs: Sequence[str]) -> dict[str, np.ndarray]:
    """'name=path.npy' pairs into arrays cast to each input's declared dtype."""
    declared = {v.name: v for v in graph.inputs}
    arrays = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            raise CnnCompileError(f"--input '{spec}' is not NAME=FILE.npy")
        if name not in declared:
            raise ModelError(f"--input names '{name}', but the model's inputs are {', '.join(declared)}")
        try:
            arrays[name] = np.load(path, allow_pickle=False).astype(declared[name].type.dtype.numpy)
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot read input '{name}' from '{path}': {err}") from None
    return arrays


LIGHT_MODELS = ("bvlc_alexnet", "zfnet512", "vgg19", "inception_v1", "inception_v2",
                "resnet50", "densenet121", "shufflenet", "squeezenet")


def light_model_path(name: str) -> Path:
    """Path of one of the small CNNs onnx ships for its backend tests (constant weights)."""
    if name not in LIGHT_MODELS:
        raise CnnCompileError(f"unknown light model '{name}'; choose one of {', '.join(LIGHT_MODELS)}")
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"
