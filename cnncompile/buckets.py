"""Shape buckets: one artifact built for several batch sizes, any batch up to the largest run in it.

TensorRT's optimization profiles give a min/opt/max range per dim and compile kernels that
take any size in it. We compile static kernels only, so a range becomes a list:
`--input-shape images=1,4,16x3x64x64` builds the whole graph once per listed size (one Relax
function per bucket, all in one library; constants that come out identical, as unpacked and
identically packed weights do, are stored once because TVM's executable deduplicates its
constant pool by content). A run takes any batch up to the largest bucket, pads it with zero
rows to the nearest bucket, runs that bucket's function and slices each output back.

Only the batch dim (dim 0) may list sizes. Padding is exact there because an inference CNN
computes each row of a batch from that row alone: the zero rows change nothing but
themselves, and slicing drops them. Padding any other dim is not exact: zeros appended to a
spatial dim enter every conv window at that border, and to a channel dim every output
channel's sum. So a list on another dim is refused, and so is a model whose outputs do not
all carry the batch as their dim 0 (a row-wise slice would then have no meaning).

A new shape never compiles anything at run time: the buckets are all the shapes there are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from cnncompile.backends.tvm.runtime import Signature, TensorSpec
from cnncompile.errors import ModelError

BATCH_DIM = 0
# How each bucket's Relax function is named: the largest is `main`, so what runs the model at its
# signature's shapes (profile, tools that call `main`) runs the largest bucket.
MAIN = "main"

Dims = Sequence[int | Sequence[int]]  # a shape in which a dim may be a list of sizes


@dataclass(frozen=True)
class Buckets:
    """The batch sizes (ascending) an artifact was built for, and the inputs whose dim 0 is that batch."""

    inputs: tuple[str, ...]
    sizes: tuple[int, ...]

    @classmethod
    def of(cls, input_shapes: Mapping[str, Dims] | None) -> Buckets | None:
        """The buckets `input_shapes` lists, or None where every dim is one size. Every listed input must
        list the same sizes, on dim 0 only: the batch is one number for the whole model."""
        listed: dict[str, tuple[int, ...]] = {}
        for name, dims in (input_shapes or {}).items():
            for index, dim in enumerate(dims):
                if isinstance(dim, int):
                    continue
                if index != BATCH_DIM:
                    raise ModelError(
                        f"input_shapes['{name}'] lists sizes {_listed(dim)} for dim {index}; only the batch dim "
                        "(dim 0) may list sizes: padding a batch with zero rows leaves the real rows exact, but "
                        "zeros padded onto a spatial or channel dim enter the convs' windows and sums; compile "
                        "one artifact per size of that dim instead")
                sizes = tuple(sorted(set(dim)))
                if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
                    raise ModelError(f"input_shapes['{name}'] dim 0 lists {_listed(dim)}; each batch bucket "
                                     "must be a positive integer, e.g. --input-shape images=1,4,16x3x224x224")
                listed[name] = sizes
        if not listed:
            return None
        if len(set(listed.values())) > 1:
            given = "; ".join(f"'{n}' {_listed(s)}" for n, s in listed.items())
            raise ModelError(f"input_shapes list different batch buckets per input ({given}); the batch is one "
                             "size for the whole model, so list the same sizes for every batched input")
        return cls(tuple(listed), next(iter(listed.values())))

    def shapes(self, input_shapes: Mapping[str, Dims], size: int) -> dict[str, tuple[int, ...]]:
        """`input_shapes` with every listed batch replaced by `size`: one bucket's static shapes."""
        return {name: tuple(size if i == BATCH_DIM and name in self.inputs else d for i, d in enumerate(dims))
                for name, dims in input_shapes.items()}

    @property
    def largest(self) -> int:
        return self.sizes[-1]

    def function(self, size: int) -> str:
        """The name of the Relax function built for the bucket `size`."""
        return MAIN if size == self.largest else f"{MAIN}_batch{size}"

    def bucket_for(self, name: str, batch: int) -> int:
        """The smallest bucket that holds `batch` rows of input `name`."""
        for size in self.sizes:
            if batch <= size:
                return size
        raise ModelError(f"input '{name}' has batch {batch}, more than the largest bucket this model was compiled "
                         f"for (batch buckets {_listed(self.sizes)}); split the batch into runs of at most "
                         f"{self.largest} or recompile with a larger bucket in --input-shape")

    def signature(self, largest: Signature, size: int) -> Signature:
        """The signature of the bucket `size`, given the largest bucket's: the batched inputs and every
        output (check_batched_outputs) with `size` as their dim 0."""
        def at(spec: TensorSpec) -> TensorSpec:
            return replace(spec, shape=(size, *spec.shape[1:]))
        return Signature(tuple(at(s) if s.name in self.inputs else s for s in largest.inputs),
                         tuple(map(at, largest.outputs)))

    def as_dict(self) -> dict:
        return {"inputs": list(self.inputs), "sizes": list(self.sizes), "dim": BATCH_DIM}

    @classmethod
    def from_dict(cls, data: Mapping) -> Buckets:
        return cls(tuple(str(n) for n in data["inputs"]), tuple(int(s) for s in data["sizes"]))


def check_batched_outputs(buckets: Buckets, output_shapes: Mapping[int, Mapping[str, tuple[int, ...]]]) -> None:
    """Refuse buckets for a model some output of which does not have the batch as its dim 0 in every
    bucket (`output_shapes[size][name]`): its padded rows could not be sliced off."""
    for size, shapes in output_shapes.items():
        for name, shape in shapes.items():
            if not shape or shape[BATCH_DIM] != size:
                raise ModelError(f"output '{name}' is {list(shape)} when the batch is {size}; batch buckets need "
                                 "every output's dim 0 to be the batch, so that padded rows can be sliced off; "
                                 "compile one artifact per batch size instead")


def run_bucketed(buckets: Buckets, static_dims: Mapping[str, tuple[int, ...]],
                 run: Callable[[int, dict[str, np.ndarray]], dict[str, np.ndarray]],
                 arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pad the batched inputs to the nearest bucket, `run(size, padded)` that bucket, slice the outputs
    back. `static_dims[name]` are a batched input's dims after the batch, which must match as given."""
    batches = {}
    for name in buckets.inputs:
        if name not in arrays:
            continue  # the bucket's own signature check names every missing input
        array = np.asarray(arrays[name])
        if array.ndim == 0 or array.shape[1:] != static_dims[name]:
            raise ModelError(f"input '{name}' has shape {list(array.shape)}, but the model takes "
                             f"[N, {', '.join(map(str, static_dims[name]))}] for N up to {buckets.largest} "
                             f"(batch buckets {_listed(buckets.sizes)})")
        batches[name] = array.shape[BATCH_DIM]
    if len(set(batches.values())) > 1:
        given = ", ".join(f"'{n}' {b}" for n, b in batches.items())
        raise ModelError(f"the batched inputs have different batches ({given}); give every batched input the "
                         "same number of rows")
    if not batches:
        return run(buckets.largest, dict(arrays))  # whose signature check names the missing inputs
    batch = next(iter(batches.values()))
    size = max(buckets.bucket_for(name, b) for name, b in batches.items())
    padded = dict(arrays)
    if size != batch:
        for name in batches:
            array = np.asarray(arrays[name])
            rows = np.zeros((size, *array.shape[1:]), array.dtype)
            rows[:batch] = array
            padded[name] = rows
    outputs = run(size, padded)
    return {name: value[:batch] for name, value in outputs.items()}


def _listed(sizes) -> str:
    return ", ".join(map(str, sizes)) if isinstance(sizes, (tuple, list)) else repr(sizes)
