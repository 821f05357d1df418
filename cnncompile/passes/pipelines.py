"""Pipelines as data: the catalog of passes, the presets O0..O3, and user pipelines in TOML.

    O0  import only: the graph as the model file describes it
    O1  cleanup: no Identity/Dropout, folded constants, shared subexpressions, no dead code
    O2  O1 + the folds that keep standard ONNX ops: BatchNorm, per-channel Mul/Add and
        Pad into convs, MatMul+Add into Gemm
    O3  O2 + fused ops: leftover BatchNorms as ChannelAffine, conv epilogues (residual,
        activation) into FusedConv; compiled for a target (`Pipeline.for_target`), O3 then
        chooses each conv's algorithm and the layouts for that target (TARGET_PASSES)

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

import enum
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
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
from cnncompile.passes.rewrite import rule_pass
from cnncompile.passes.scale_shift import SCALE_SHIFT_RULES
from cnncompile.selection.options import SelectOptions, select_pass, target_option


@dataclass(frozen=True)
class PassInfo:
    """A pass by name: what it does in one line, its options (a dataclass), and how to build it."""

    name: str
    description: str
    build: Callable[[Any], Pass]
    options: type | None = None
    # For a pass that depends on the target: the options a compile for a target (a TargetSpec)
    # gives it where the pipeline leaves them unset (Pipeline.for_target); None for a target
    # the pass has nothing to do on, which leaves it out.
    target_options: Callable[[Any], dict[str, Any] | None] | None = None


def _fixed(run: Pass) -> Callable[[Any], Pass]:
    return lambda _: run


CATALOG: dict[str, PassInfo] = {info.name: info for info in (
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
             lambda options: partial(assign_layouts, options=options), LayoutOptions,
             lambda target: None if target.is_gpu else {"lanes": target.vector_lanes}),
    PassInfo("select-conv-algorithms", "every conv a FusedConv with the algorithm, layout and tile that the cost "
             "model (or a tuning cache) finds fastest on the target", select_pass, SelectOptions,
             lambda target: {"target": target_option(target)}),
)}

_CLEANUP = ("remove-identity", "fold-constants", "eliminate-common-subexpressions", "simplify-movement")
PRESETS: dict[str, tuple[str, ...]] = {
    "O0": (),
    "O1": (*_CLEANUP, "eliminate-dead-code"),
    "O2": (*_CLEANUP, "fuse-gemm", "fold-batchnorm", "fold-pad", "fold-scale-shift", "eliminate-dead-code"),
    "O3": (*_CLEANUP, "fuse-gemm", "fold-batchnorm", "batchnorm-to-affine", "fold-pad", "fold-scale-shift",
           "fuse-conv-epilogue", "eliminate-dead-code"),
}
# What a preset adds when it is compiled for a target (the presets themselves stay target-independent,
# so that `compare` on the reference backend and O0..O2 builds mean the same everywhere).
TARGET_PASSES: dict[str, tuple[str, ...]] = {
    "O3": ("select-conv-algorithms", "assign-layouts"),
}


@dataclass(frozen=True)
class PassSpec:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    name: str
    passes: tuple[PassSpec, ...]
    target_passes: tuple[str, ...] = ()  # appended by for_target (a preset's TARGET_PASSES)

    def steps(self) -> list[Step]:
        return [Step(spec.name, _build(spec, self.name)) for spec in self.passes]

    def for_target(self, target: Any) -> Pipeline:
        """The pipeline a compile for `target` (a TargetSpec) runs: its target passes appended, and each
        target-dependent pass given the target's options where the pipeline does not set them, or
        left out where it has nothing to do on the target (assign-layouts on a GPU)."""
        passes = []
        for spec in (*self.passes, *map(PassSpec, self.target_passes)):
            info = CATALOG.get(spec.name)
            if info is not None and info.target_options is not None:
                options = info.target_options(target)
                if options is None:
                    continue
                spec = PassSpec(spec.name, {**options, **spec.options})
            passes.append(spec)
        return Pipeline(self.name, tuple(passes))

    def with_options(self, name: str, **options: Any) -> Pipeline:
        """This pipeline with `options` set on every run of the pass `name` (which it must run)."""
        if name not in {spec.name for spec in self.passes}:
            raise CnnCompileError(f"pipeline '{self.name}' does not run '{name}', so it takes no options for it")
        passes = tuple(PassSpec(s.name, {**s.options, **options}) if s.name == name else s for s in self.passes)
        return Pipeline(self.name, passes, self.target_passes)


def preset(name: str) -> Pipeline:
    if name not in PRESETS:
        raise CnnCompileError(f"unknown pipeline preset '{name}'; choose one of {', '.join(PRESETS)} "
                              "or give a .toml file")
    return Pipeline(name, tuple(PassSpec(p) for p in PRESETS[name]), TARGET_PASSES.get(name, ()))


def load_pipeline(spec: str) -> Pipeline:
    """A preset by name (O0..O3), or a pipeline read from a TOML file."""
    if spec in PRESETS or not spec.endswith(".toml"):
        return preset(spec)
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
    pipeline = Pipeline(str(data.get("name", path.stem)), (*base, *passes))
    pipeline.steps()  # report unknown passes and bad options now, not halfway through a run
    return pipeline


def _build(spec: PassSpec, pipeline: str) -> Pass:
    info = CATALOG.get(spec.name)
    where = f"pipeline '{pipeline}', pass '{spec.name}'"
    if info is None:
        raise CnnCompileError(f"{where}: no such pass; `cnncompile passes` lists them: {', '.join(CATALOG)}")
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
