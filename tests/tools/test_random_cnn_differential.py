"""Differential testing in CI: 200 seeded random CNNs, each compiled for LLVM and judged against the
float64 reference and onnxruntime (cnncompile.tools.differential).

Graph i is `draw_spec(i)`, compiled by MODES[i % len(MODES)]: O0, O1, O2 and O3 as a compile
runs them, and O3 with every conv's algorithm, layout and tile drawn at random among those
that apply (twice in the cycle: most kernels only O3 builds). Each graph is its own compile
(about 0.5 s here), so the batch takes about two minutes on one core; the benchmark
(benchmarks/random_cnn_differential.py) runs thousands. The bound is the numerical policy's,
as `cnncompile validate` applies it: end to end within the loosest node's tolerance, else
node by node. A failure names the seed, the graph, the mode, the output and the spec.
"""

from collections import Counter

import pytest

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.backends.tvm.target import parse_target
from cnncompile.ir.types import LayoutKind
from cnncompile.selection.explain import choices_of
from cnncompile.tools.differential import Mode, Outcome, check, optimize_mode
from cnncompile.tools.random_cnn import build, draw_spec

GRAPHS = 200
MODES = [Mode.parse(m) for m in ("O0", "O1", "O2", "O3", "O3-random", "O3-random")]


def mode_of(index: int) -> Mode:
    return MODES[index % len(MODES)]


@pytest.mark.parametrize("index", range(GRAPHS))
def test_random_cnn_matches_float64_and_onnxruntime(index):
    result = check(draw_spec(index), mode_of(index))
    assert result.outcome is Outcome.PASS, result.message()


def test_the_batch_builds_every_algorithm_and_layout():
    """The random choices reach every conv algorithm, every layout kind and non-default tiles: the batch
    tests the kernels a tuned compile can build, not only the cost model's favourites."""
    target = parse_target("llvm")
    chosen = Counter()
    for index in range(GRAPHS):
        if mode_of(index) == Mode.parse("O3-random"):
            run = optimize_mode(build(draw_spec(index)), mode_of(index), index, target)
            for choice in choices_of(run):
                c = choice.chosen
                layout = c.layout.kind if c.layout else LayoutKind.NCHW
                chosen.update([c.algorithm, layout, "tiled" if c.tile else "plan"])
    missing = [a for a in (*ConvAlgorithm, *LayoutKind, "tiled") if chosen[a] == 0]
    assert not missing, f"never chosen in the batch: {missing}; chosen: {dict(chosen)}"
