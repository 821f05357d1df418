"""How a pipeline names and builds `select-conv-algorithms`: its options, and the pass they build.

Kept apart from the pass itself, which imports the pass framework, so that the pipeline
catalog can list this pass without importing it in a cycle; and the target is parsed (the
TVM backend takes seconds to import) only when a pipeline is built to run, never when the
passes are merely listed (`cnncompile passes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnncompile.algorithms.applicability import ConvAlgorithm

if TYPE_CHECKING:
    from cnncompile.backends.tvm.target import TargetSpec


@dataclass(frozen=True)
class SelectOptions:
    """`target` as `--target` spells it (llvm: this CPU); `tuning_cache` a tuning cache file whose
    measurements decide where it holds the workload (empty: the cost model decides everywhere);
    `algorithms` the ones it may choose from (a pipeline file can rule one out to compare);
    `keep_layouts` keeps each conv in the layout its output has (run after assign-layouts)."""

    target: str = "llvm"
    tuning_cache: str = ""
    algorithms: tuple[ConvAlgorithm, ...] = tuple(ConvAlgorithm)
    keep_layouts: bool = False


def select_pass(options: SelectOptions) -> Any:
    """The pass `Graph -> (Graph, SelectionLog)` for `options`, its target parsed and its cache opened."""
    from cnncompile.backends.tvm.target import parse_target
    from cnncompile.selection.select import cache_lookup, select_conv_algorithms

    target = parse_target(options.target)
    lookup = cache_lookup(options.tuning_cache, target) if options.tuning_cache else None
    return lambda graph: select_conv_algorithms(graph, target, lookup, options.algorithms, options.keep_layouts)


def target_option(target: TargetSpec) -> str:
    """`target` as the pass's `target` option: `llvm` for this machine, which keeps the vector features
    it hides (its str, `llvm:CPU`, names the silicon, and parsing it back would assume them all)."""
    from cnncompile.backends.tvm.target import host_cpu

    return "llvm" if target == host_cpu() else str(target)
