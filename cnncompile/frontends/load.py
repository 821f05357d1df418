"""Any model a user names, as a Graph: an ONNX path, or zoo:NAME built at its published size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cnncompile.errors import ModelError
from cnncompile.frontends import zoo
from cnncompile.frontends.dsl import Weights
from cnncompile.frontends.onnx import load_onnx
from cnncompile.ir.graph import Graph

ZOO_PREFIX = "zoo:"


def load_model(spec: str, input_shapes: Mapping[str, Sequence[int]] | None = None,
               weights: Weights = Weights.RANDOM) -> Graph:
    """An ONNX file, or `zoo:NAME` built at its published size (or the one bound in `input_shapes`).

    `weights` only concerns zoo models: PLACEHOLDER skips drawing random weights when
    only shapes and counts are wanted.
    """
    _one_size_per_dim(input_shapes or {})
    if not spec.startswith(ZOO_PREFIX):
        return load_onnx(spec, input_shapes)
    model = zoo.model(spec[len(ZOO_PREFIX):])
    shapes = dict(input_shapes or {})
    unknown = set(shapes) - {model.input_name}
    if unknown:
        raise ModelError(f"--input-shape names {', '.join(sorted(unknown))}, but {spec} has one input, "
                         f"'{model.input_name}' {'x'.join(map(str, model.input_shape))}; "
                         f"e.g. --input-shape {model.input_name}={'x'.join(map(str, model.input_shape))}")
    return model.build(shapes.get(model.input_name), weights=weights)


def _one_size_per_dim(input_shapes: Mapping[str, Sequence[int]]) -> None:
    """A list of sizes is a set of batch buckets, which only `compile` builds (cnncompile.buckets): a
    graph has one shape."""
    for name, dims in input_shapes.items():
        for index, dim in enumerate(dims):
            if isinstance(dim, (list, tuple)):
                largest = "x".join(str(d if isinstance(d, int) else max(d)) for d in dims)
                raise ModelError(f"input_shapes['{name}'] lists sizes {', '.join(map(str, dim))} for dim {index}: a "
                                 "list of batch sizes is a set of shape buckets, which only `compile` builds into "
                                 f"one artifact; give one size per dim here (e.g. --input-shape {name}={largest})")
