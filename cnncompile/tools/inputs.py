"""What a command feeds a model: input sets drawn at random, read from .npy/.npz files, or made from a
folder of images (cnncompile.tools.images).

Every source gives a list of input sets, each a dict of arrays by input name, checked against the
model's inputs (`conform`): a missing or unknown name, a wrong shape or an element type that does
not convert within its kind (float64 into float32 is fine, float into int is not) is a ModelError
naming the input and what it takes.

    --distribution normal[:MEAN,STD]     N(MEAN, STD^2) (default normal:0,1)
    --distribution uniform[:LOW,HIGH]    uniform in [LOW, HIGH) (default 0,1)
    --distribution image                 integers 0..255, scaled to 0..--pixel-max, then (x - --mean) / --std
    --count N --seed S                   N sets; set i is drawn from (S, i), so it is the same whatever N
    --input NAME=FILE.npy                one array per input (repeatable): one set
    --inputs FILE.npz                    arrays by input name, each either of the input's shape (one set) or
                                         with one more, leading axis of S sets (what `run --output` writes
                                         for several sets)
    --images DIR [--resize HxW]          one set per image (or per batch of N for an (N,3,H,W) input)
    --mean M[,M,M] --std S[,S,S] --pixel-max P   how --images and the image distribution normalize pixels

One source at a time (`gather`): the random distribution unless --input, --inputs or --images is given.

Integer inputs (indices, sizes) are drawn as integers in [0, 4) whatever the distribution: small
non-negative integers are valid for the ops that take them, where a float distribution's would not be.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType

InputSet = dict[str, np.ndarray]


@dataclass(frozen=True)
class InputSpec:
    """One input a model takes: what every source is checked against."""

    name: str
    shape: tuple[int, ...]
    dtype: DType

    def __str__(self) -> str:
        return f"'{self.name}' {self.dtype.value}[{'x'.join(map(str, self.shape))}]"


def input_specs(model: Graph | Sequence) -> tuple[InputSpec, ...]:
    """The inputs of a Graph, or of anything listing name/shape/dtype (a compiled model's `inputs`)."""
    if isinstance(model, Graph):
        return tuple(InputSpec(v.name, tuple(v.type.shape), v.type.dtype) for v in model.inputs)
    return tuple(InputSpec(s.name, tuple(s.shape), DType(str(s.dtype))) for s in model)


class DistributionKind(enum.Enum):
    NORMAL = "normal"
    UNIFORM = "uniform"
    IMAGE = "image"


@dataclass(frozen=True)
class Normalization:
    """How pixels become model inputs: scaled from 0..255 to 0..pixel_max, then (x - mean) / std, each a
    scalar or one value per channel (axis 1 of an NCHW input)."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    pixel_max: float = 255.0

    def __post_init__(self) -> None:
        if not all(s > 0 for s in self.std):
            raise CnnCompileError(f"--std {','.join(map(str, self.std))}: every std must be > 0")

    def apply(self, pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
        """`pixels` (integers 0..255 in any dtype, shaped as `spec`) normalized, in float64."""
        channels = max(len(self.mean), len(self.std))
        if channels > 1:
            if len(spec.shape) != 4 or spec.shape[1] != channels or min(len(self.mean), len(self.std)) not in (1, channels):
                raise CnnCompileError(f"--mean/--std give {channels} channels, but input {spec} is not (N,{channels},H,W); "
                                      "give one value each, or as many as the input has channels")
        mean = np.asarray(self.mean, np.float64).reshape(-1, 1, 1) if channels > 1 else self.mean[0]
        std = np.asarray(self.std, np.float64).reshape(-1, 1, 1) if channels > 1 else self.std[0]
        return (pixels.astype(np.float64) * (self.pixel_max / 255.0) - mean) / std


@dataclass(frozen=True)
class Distribution:
    """A seeded distribution for float inputs; `a, b` are normal's mean and std, uniform's low and high."""

    kind: DistributionKind = DistributionKind.NORMAL
    a: float = 0.0
    b: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Distribution:
        """'normal', 'normal:0,2', 'uniform:-1,1', 'image'."""
        name, _, params = text.partition(":")
        try:
            kind = DistributionKind(name.strip())
        except ValueError:
            raise CnnCompileError(f"--distribution '{text}': choose normal[:MEAN,STD], uniform[:LOW,HIGH] or "
                                  "image") from None
        if not params:
            return cls(kind)
        values = floats(params, f"--distribution '{text}'")
        if kind is DistributionKind.IMAGE or len(values) != 2:
            usage = "image takes no parameters" if kind is DistributionKind.IMAGE else f"{kind.value} takes two numbers"
            raise CnnCompileError(f"--distribution '{text}': {usage}, e.g. normal:0,1 or uniform:-1,1")
        made = cls(kind, *values)
        if kind is DistributionKind.NORMAL and not made.b > 0:
            raise CnnCompileError(f"--distribution '{text}': the std must be > 0")
        if kind is DistributionKind.UNIFORM and not made.a < made.b:
            raise CnnCompileError(f"--distribution '{text}': the range needs LOW < HIGH")
        return made

    def draw(self, rng: np.random.Generator, spec: InputSpec, normalization: Normalization) -> np.ndarray:
        if self.kind is DistributionKind.NORMAL:
            return rng.normal(self.a, self.b, spec.shape)
        if self.kind is DistributionKind.UNIFORM:
            return rng.uniform(self.a, self.b, spec.shape)
        return normalization.apply(rng.integers(0, 256, spec.shape), spec)


def floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise CnnCompileError(f"{what}: '{text}' is not a comma-separated list of numbers") from None


def random_sets(specs: Sequence[InputSpec], distribution: Distribution = Distribution(),
                normalization: Normalization = Normalization(), seed: int = 0, count: int = 1) -> list[InputSet]:
    """`count` input sets; set i comes from its own generator seeded by (seed, i), so asking for more sets
    never changes the first ones."""
    if seed < 0 or count < 1:
        raise CnnCompileError(f"--seed must be >= 0 and --count >= 1 (got {seed} and {count})")
    sets = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        sets.append({s.name: (distribution.draw(rng, s, normalization) if s.dtype.is_float
                              else rng.integers(0, 4, s.shape)).astype(s.dtype.numpy) for s in specs})
    return sets


def conform(specs: Sequence[InputSpec], arrays: Mapping[str, np.ndarray], source: str) -> InputSet:
    """`arrays` checked against `specs` and cast to their element types (within a kind: float64 to
    float32, int64 to int32, an int or a bool to a float)."""
    known = {s.name for s in specs}
    unknown = sorted(set(arrays) - known)
    if unknown:
        raise ModelError(f"{source} gives input(s) {', '.join(map(repr, unknown))}, but the model takes "
                         f"{', '.join(map(str, specs))}")
    missing = [s for s in specs if s.name not in arrays]
    if missing:
        raise ModelError(f"{source} lacks input(s) {', '.join(map(str, missing))}")
    conformed = {}
    for spec in specs:
        array = np.asarray(arrays[spec.name])
        if array.shape != spec.shape:
            raise ModelError(f"input '{spec.name}' expects {list(spec.shape)} {spec.dtype.value}, but {source} gives "
                             f"{list(array.shape)} {array.dtype}")
        if not np.can_cast(array.dtype, spec.dtype.numpy, casting="same_kind"):
            raise ModelError(f"input '{spec.name}' expects {spec.dtype.value}, but {source} gives {array.dtype}, "
                             f"which does not convert to it; save it as {spec.dtype.value}")
        conformed[spec.name] = array.astype(spec.dtype.numpy, copy=False)
    return conformed


def _load(path: str | Path, what: str):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read {what} from '{path}': {err}") from None


def read_npy_pairs(pairs: Sequence[str]) -> InputSet:
    """'NAME=FILE.npy' pairs, read as they are."""
    arrays = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name:
            raise CnnCompileError(f"--input '{pair}' is not NAME=FILE.npy")
        arrays[name] = _load(path, f"input '{name}'")
    return arrays


def read_npz(path: str | Path, specs: Sequence[InputSpec]) -> list[InputSet]:
    """The sets of an .npz: arrays by input name, each shaped as its input (one set) or with a leading axis
    of S sets, the same S for every stacked input; an input given once is the same in every set. Arrays are
    read as they are; `conform` checks them."""
    with _load(path, "inputs") as archive:
        arrays = {name: archive[name] for name in archive.files}
    declared = {s.name: s.shape for s in specs}
    stacked = {name: len(a) for name, a in arrays.items()
               if name in declared and a.shape != declared[name] and a.shape[1:] == declared[name]}
    if len(set(stacked.values())) > 1:
        raise ModelError(f"'{path}' stacks different numbers of input sets: "
                         f"{', '.join(f'{n} {list(arrays[n].shape)}' for n in sorted(stacked))}")
    count = next(iter(stacked.values()), 1)
    return [{name: (a[i] if name in stacked else a) for name, a in arrays.items()} for i in range(count)]


def stack_sets(sets: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One set as it is; several with a leading axis of sets (what `read_npz` reads back)."""
    if len(sets) == 1:
        return dict(sets[0])
    return {name: np.stack([s[name] for s in sets]) for name in sets[0]}


@dataclass(frozen=True)
class InputOptions:
    """Where a command's input sets come from: `arrays` (--input pairs), `npz`, `images`, else drawn at random."""

    distribution: Distribution = Distribution()
    normalization: Normalization = Normalization()
    count: int = 1
    seed: int = 0
    arrays: tuple[str, ...] = ()
    npz: str | None = None
    images: str | None = None
    resize: tuple[int, int] | None = None


def gather(specs: Sequence[InputSpec], options: InputOptions) -> list[InputSet]:
    """The input sets `options` name, each checked against `specs` (`conform`)."""
    given = [flag for flag, used in (("--input", options.arrays), ("--inputs", options.npz),
                                     ("--images", options.images)) if used]
    if len(given) > 1:
        raise CnnCompileError(f"{' and '.join(given)} both give the inputs: choose one source")
    if options.resize is not None and not options.images:
        raise CnnCompileError("--resize applies to --images: add --images DIR or drop --resize")
    if options.arrays:
        return [conform(specs, read_npy_pairs(options.arrays), "--input")]
    if options.npz:
        return [conform(specs, s, f"--inputs '{options.npz}'") for s in read_npz(options.npz, specs)]
    if options.images:
        from cnncompile.tools.images import image_sets  # Pillow, only when pictures are asked for

        return image_sets(options.images, specs, options.normalization, options.resize)
    return random_sets(specs, options.distribution, options.normalization, options.seed, options.count)
