"""Pipelines as data: the catalog of passes, the presets O0..O3, and user pipelines in TOML.

    O0  import only: the graph as the model file describes it
    O1  cleanup: no Identity/Dropout, folded constants, shared subexpressions, no dead code
    O2  O1 + the folds that keep standard ONNX ops: BatchNorm, per-channel Mul/Add and
        Pad into convs, MatMul+Add into Gemm
    O3  O2 + fused ops: leftover BatchNorms as ChannelAffine, conv epilogues (residual,
        activation) into FusedConv; compiled for a target, O3 then also chooses each conv's
        algorithm and the layouts for that target

Nothing here knows a target. The passes that depend on one, and what a compile for a
target adds to a pipeline, belong to the layer that knows targets
(cnncompile.selection.pipelines): it extends CATALOG with `with_passes`, and builds its
pipelines against the larger catalog, which each Pipeline carries.

A user pipeline is a TOML file listing passes in order, each with its options:

    name = "relu-only"          # optional; the file's stem otherwise
    base = "O2"                 # optional; start from a preset's passes
    [[pass]]
    name = "fuse-conv-epilogue"
    activations = ["Relu", "Clip"]
    residual = false

The order of the presets matters and is chosen so that one run reaches a fixed point:
Pad folds before per-channel scales (Mul -> Pad -> Conv needs the Pad gone first), the
BatchNorms that no conv absorbed become ChannelAffine before Mul/Add fold into them, and
fusion runs last, as it hides convs from the folds.
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cnncompile.errors import CnnCompileError
from cnncompile.ir.verifier import check_attr_types
from cnncompile.passes.batchnorm import AFFINE_RULES, FOLD_BATCHNORM_RULES
from cnncompile.passes.cleanup import IDENTITY_RULES, eliminate_common_subexpressions, eliminate_dead_code
from cnncompile.passes.epilogue import EpilogueOptions, epilogue_rules
from cnncompile.passes.folding import FoldOptions, fold_constants
from cnncompile.passes.gemm import GEMM_RULES
from cnncompile.passes.layout import LayoutOptions, assign_layouts
from cnncompile.passes.manager import Pass, Step
from cnncompile.passes.movement import MOVEMENT_RULES
from cnncompile.passes.padding import PAD_RULES
from cnncompile.passes.precision import PrecisionOptions, convert_precision
from cnncompile.passes.rewrite import rule_pass
from cnncompile.passes.scale_shift import SCALE_SHIFT_RULES


@dataclass(frozen=True)
class PassInfo:
    """A pass by name: what it does in one line, its options (a dataclass), and how to build it."""

    name: str
    description: str
    build: Callable[[Any], Pass]
    options: type | None = None


Catalog = Mapping[str, PassInfo]


def with_passes(catalog: Catalog, *infos: PassInfo) -> Catalog:
    """`catalog` and then `infos`, as a new read-only catalog; a name it already has is an error."""
    taken = sorted({info.name for info in infos} & set(catalog))
    if taken:
        raise ValueError(f"the pass catalog already has {', '.join(taken)}")
    return MappingProxyType({**catalog, **{info.name: info for info in infos}})


def _fixed(run: Pass) -> Callable[[Any], Pass]:
    return lambda _: run


# The passes that need no target, in the order `cnncompile passes` lists them.
CATALOG: Catalog = with_passes({}, *(
    PassInfo("remove-identity", "drop Identity and inference-mode Dropout", _fixed(rule_pass(IDENTITY_RULES))),
    PassInfo("fold-constants", "evaluate nodes whose inputs are all constants (or only their shapes matter)",
             lambda options: partial(fold_constants, options=options), FoldOptions),
    PassInfo("eliminate-common-subexpressions", "merge nodes with the same op, inputs and attributes",
             _fixed(eliminate_common_subexpressions)),
    PassInfo("eliminate-dead-code", "remove nodes and constants that no output depends on",
             _fixed(eliminate_dead_code)),
    PassInfo("simplify-movement", "merge consecutive Transposes and reshapes; drop the ones that do nothing",
             _fixed(rule_pass(MOVEMENT_RULES))),
    PassInfo("fuse-gemm", "MatMul + Add into Gemm; the reshape before a Gemm into one Flatten",
             _fixed(rule_pass(GEMM_RULES))),
    PassInfo("fold-batchnorm", "fold BatchNormalization into the Conv, ConvTranspose or Gemm before it",
             _fixed(rule_pass(FOLD_BATCHNORM_RULES))),
    PassInfo("batchnorm-to-affine", "turn the remaining BatchNormalizations into ChannelAffine (scale, shift)",
             _fixed(rule_pass(AFFINE_RULES))),
    PassInfo("fold-pad", "fold a zero Pad into the padding of the conv after it", _fixed(rule_pass(PAD_RULES))),
    PassInfo("fold-scale-shift", "fold Mul/Add by per-channel constants into the conv or ChannelAffine beside them",
             _fixed(rule_pass(SCALE_SHIFT_RULES))),
    PassInfo("fuse-conv-epilogue", "fuse residual Add and activation into FusedConv / ChannelAffine epilogues",
             lambda options: rule_pass(epilogue_rules(options)), EpilogueOptions),
    PassInfo("assign-layouts", "store feature maps as NCHWc or NHWC around FusedConvs, with the fewest transforms",
             lambda options: partial(assign_layouts, options=options), LayoutOptions),
    PassInfo("convert-precision", "convs and matrix products from fp16 or bf16 operands with float32 accumulation; "
             "the rest as the precision policy says, with the fewest casts",
             lambda options: partial(convert_precision, options=options), PrecisionOptions),
))

_CLEANUP = ("remove-identity", "fold-constants", "eliminate-common-subexpressions", "simplify-movement")
PRESETS: dict[str, tuple[str, ...]] = {
    "O0": (),
    "O1": (*_CLEANUP, "eliminate-dead-code"),
    "O2": (*_CLEANUP, "fuse-gemm", "fold-batchnorm", "fold-pad", "fold-scale-shift", "eliminate-dead-code"),
    "O3": (*_CLEANUP, "fuse-gemm", "fold-batchnorm", "batchnorm-to-affine", "fold-pad", "fold-scale-shift",
           "fuse-conv-epilogue", "eliminate-dead-code"),
}


@dataclass(frozen=True)
class PassSpec:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name} ({options})" if options else self.name


@dataclass(frozen=True)
class Pipeline:
    """Passes to run in order, by name and options, and the catalog that builds them. `target_passes`
    are the passes a compile for a target appends (cnncompile.selection.pipelines fills and reads them)."""

    name: str
    passes: tuple[PassSpec, ...]
    target_passes: tuple[PassSpec, ...] = ()
    catalog: Catalog = field(default_factory=lambda: CATALOG, compare=False, repr=False)

    def steps(self) -> list[Step]:
        return [Step(spec.name, _build(spec, self.name, self.catalog)) for spec in self.passes]

    def with_options(self, name: str, **options: Any) -> Pipeline:
        """This pipeline with `options` set on every run of the pass `name` (which it must run)."""
        if name not in {spec.name for spec in self.passes}:
            raise CnnCompileError(f"pipeline '{self.name}' does not run '{name}', so it takes no options for it")
        passes = tuple(PassSpec(s.name, {**s.options, **options}) if s.name == name else s for s in self.passes)
        return dataclasses.replace(self, passes=passes)


_NONE: Mapping[str, tuple[PassSpec, ...]] = MappingProxyType({})


def preset(name: str, catalog: Catalog = CATALOG,
           target_passes: Mapping[str, tuple[PassSpec, ...]] = _NONE) -> Pipeline:
    """The preset `name` (O0..O3); `target_passes` are what each preset gains when compiled for a target."""
    if name not in PRESETS:
        raise CnnCompileError(f"unknown pipeline preset '{name}'; choose one of {', '.join(PRESETS)} "
                              "or give a .toml file")
    return Pipeline(name, tuple(PassSpec(p) for p in PRESETS[name]), target_passes.get(name, ()), catalog)


def load_pipeline(spec: str, catalog: Catalog = CATALOG,
                  target_passes: Mapping[str, tuple[PassSpec, ...]] = _NONE) -> Pipeline:
    """A preset by name (O0..O3), or a pipeline read from a TOML file, whose passes `catalog` builds."""
    if spec in PRESETS or not spec.endswith(".toml"):
        return preset(spec, catalog, target_passes)
    path = Path(spec)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise CnnCompileError(f"cannot read pipeline file '{path}': {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise CnnCompileError(f"pipeline file '{path}' is not valid TOML: {err}") from None
    unknown = set(data) - {"name", "base", "pass"}
    if unknown:
        raise CnnCompileError(f"pipeline file '{path}': unknown key(s) {', '.join(sorted(unknown))}; "
                              "expected name, base and [[pass]] tables")
    base = preset(data["base"]).passes if "base" in data else ()
    passes = []
    for index, table in enumerate(data.get("pass", [])):
        if not isinstance(table, dict) or "name" not in table:
            raise CnnCompileError(f"pipeline file '{path}': pass {index + 1} has no name; "
                                  "write [[pass]] then name = \"fold-batchnorm\"")
        options = {k: v for k, v in table.items() if k != "name"}
        passes.append(PassSpec(table["name"], options))
    pipeline = Pipeline(str(data.get("name", path.stem)), (*base, *passes), catalog=catalog)
    pipeline.steps()  # report unknown passes and bad options now, not halfway through a run
    return pipeline


def _build(spec: PassSpec, pipeline: str, catalog: Catalog) -> Pass:
    info = catalog.get(spec.name)
    where = f"pipeline '{pipeline}', pass '{spec.name}'"
    if info is None:
        raise CnnCompileError(f"{where}: no such pass; `cnncompile passes` lists them: {', '.join(catalog)}")
    if info.options is None:
        if spec.options:
            raise CnnCompileError(f"{where}: takes no options, got {', '.join(sorted(spec.options))}")
        return info.build(None)
    return info.build(_options(info.options, spec.options, where))


def _options(cls: type, given: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = set(given) - set(names)
    if unknown:
        raise CnnCompileError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}; it takes {', '.join(names)}")
    try:
        options = cls(**{k: _coerce(v, hints[k]) for k, v in given.items()})
        check_attr_types(options)
    except (ValueError, TypeError) as err:
        raise CnnCompileError(f"{where}: {err}") from None
    return options


def _coerce(value: Any, hint: Any) -> Any:
    """A TOML value as the option's type: lists become tuples, strings become enum members."""
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        item = typing.get_args(hint)[0]
        return tuple(_coerce(v, item) for v in value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum) and isinstance(value, str):
        try:
            return hint(value)
        except ValueError:
            raise ValueError(f"'{value}' is not one of {', '.join(m.value for m in hint)}") from None
    return value
