"""The select-conv-algorithms pass: every conv a FusedConv by an applicable algorithm, the
reference outputs unchanged within each algorithm's tolerance, measured choices preferred.

The oracle is the float64 reference of the graph before the pass (and, for float32, the
DESIGN.md tolerance of the algorithm chosen).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from pass_harness import Net, assert_same_numerics, ops, random_inputs

from cnncompile import run_reference
from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec, why_not
from cnncompile.ir.types import DType, TensorType
from cnncompile.numerics import relative_error
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Relu
from cnncompile.ops.fused import FusedConv
from cnncompile.passes import Step, run_pipeline
from cnncompile.selection.candidates import Candidate
from cnncompile.selection.options import SelectOptions
from cnncompile.selection.pipelines import CATALOG, for_target, load_pipeline, preset
from cnncompile.selection.select import ChoiceSource, select_conv_algorithms
from selection_harness import AVX2, CUDA

A = ConvAlgorithm
# DESIGN.md's float32 tolerances per algorithm (against the float64 reference)
F32_TOLERANCE = {A.WINOGRAD_F2X3: 1e-4, A.WINOGRAD_F4X3: 1e-3}
F32_DEFAULT = 1e-5


def mixed_net(dtype: DType = DType.FLOAT64, seed: int = 0):
    """Convs of every kind: 3x3, 1x1, strided, dilated, grouped, depthwise, bias-less, a residual, a 5x5."""
    net = Net((1, 16, 20, 20), seed=seed, dtype=dtype)
    a = net.node(Relu, net.conv(net.x, 32))                           # 3x3 stride 1: Winograd applies
    b = net.conv(a, 32, kernel=1, pad=0, bias=False)                  # 1x1: gemm_1x1
    c = net.node(Add, net.conv(b, 32, kernel=3), a)                   # residual
    d = net.conv(c, 32, kernel=3, group=32)                           # depthwise
    e = net.conv(d, 48, kernel=3, stride=2)                           # strided
    f = net.conv(e, 48, kernel=3, dilation=2, group=4)                # dilated, grouped
    g = net.conv(f, 16, kernel=5, pad=2)                              # 5x5: fft applies
    return net.done(g)


def select(graph, target=AVX2, lookup=None, pipeline: str | None = "O3"):
    """`graph` through `pipeline` (a preset) and then the pass, verified after each; (before, run)."""
    before = graph.copy()
    steps = preset(pipeline).steps() if pipeline else []
    steps.append(Step("select-conv-algorithms", lambda g: select_conv_algorithms(g, target, lookup)))
    return before, run_pipeline(graph, steps, verify=True)


@pytest.mark.parametrize("target", [AVX2, CUDA], ids=["avx2", "cuda"])
def test_every_conv_becomes_a_fused_conv_by_an_applicable_algorithm(target):
    before, run = select(mixed_net(), target)
    after = run.graph
    assert "Conv" not in ops(after)
    convs = [n for n in after.nodes if n.op is FusedConv]
    assert len(convs) == ops(before)["Conv"] == 7
    choices = run.records[-1].log.choices
    assert [c.node for c in choices] == [n.name for n in convs]
    for node, choice in zip(convs, choices):
        spec = ConvSpec.of(node.inputs[0].type, node.inputs[1].type, **{
            k: getattr(node.attrs, k) for k in ("strides", "dilations", "pads", "auto_pad", "group")})
        assert why_not(node.attrs.algorithm, spec) is None
        assert choice.chosen == Candidate(node.attrs.algorithm, node.attrs.layout, node.attrs.tile)
        assert choice.source == ChoiceSource.COST_MODEL and choice.alternatives[0][0] == choice.chosen
        assert [s for _, s in choice.alternatives] == sorted(s for _, s in choice.alternatives)
        excluded = {what for what, _ in choice.excluded}
        assert excluded >= {a.value for a in A if why_not(a, spec) is not None}
        if target.is_gpu:
            assert node.attrs.layout is None
    assert_same_numerics(before, after, tol=1e-9)


def test_a_conv_in_another_layout_is_wrapped_in_transforms_and_the_graph_stays_valid():
    before, run = select(mixed_net(), lookup=forcing({(16, 32, (3, 3)): "direct/NCHW8c",
                                                      (32, 32, (1, 1)): "gemm_1x1/NHWC"}))
    after = run.graph
    producers, consumers = after.producers(), after.consumers()
    laid_out = [n for n in after.nodes if n.op is FusedConv and n.attrs.layout is not None]
    assert {"NCHW8c", "NHWC"} <= {str(n.attrs.layout) for n in laid_out}
    for node in laid_out:
        (y,) = node.outputs
        assert y.type.layout == node.attrs.layout
        assert [(r.op.name, r.attrs.layout) for r in consumers[y]] == [("LayoutTransform", None)]
        if len(node.inputs) > 3:
            z = producers[node.inputs[3]]
            assert (z.op.name, z.attrs.layout) == ("LayoutTransform", node.attrs.layout)
    assert ops(after)["LayoutTransform"] == sum(1 + (len(n.inputs) > 3) for n in laid_out)
    assert all(v.type.layout is None for v in after.outputs)
    assert_same_numerics(before, after, tol=1e-9)


@dataclass(frozen=True)
class Record:
    """What a tuning cache returns for a workload: the fastest candidate and what each one measured."""

    best: Candidate
    results: dict


def forcing(table: dict[tuple, str]):
    """A lookup that 'measured' the given candidate fastest for workloads keyed by (C, K, kernel)."""

    def lookup(spec: ConvSpec):
        text = table.get((spec.in_channels, spec.out_channels, spec.kernel))
        if text is None or spec.group != 1:
            return None
        best = Candidate.parse(text)
        return Record(best, {best: 1e-4, Candidate(A.DIRECT): 2e-4})

    return lookup


def test_measured_choices_win_and_those_that_do_not_apply_are_ignored():
    table = {(16, 32, (3, 3)): "fft/NCHW",           # applies: chosen although the model would not
             (32, 48, (3, 3)): "winograd_f2x3/NCHW"}  # the strided conv: Winograd does not apply
    before, run = select(mixed_net(), lookup=forcing(table))
    choices = {c.spec.in_channels * 1000 + c.spec.out_channels: c for c in run.records[-1].log.choices}
    first, strided = choices[16 * 1000 + 32], choices[32 * 1000 + 48]
    assert (first.chosen, first.source) == (Candidate(A.FFT), ChoiceSource.MEASURED)
    assert first.alternatives == ((Candidate(A.FFT), 1e-4), (Candidate(A.DIRECT), 2e-4))
    # the strided conv's fastest measurement does not apply to it: the fastest one that does decides
    assert (strided.chosen, strided.source) == (Candidate(A.DIRECT), ChoiceSource.MEASURED)
    assert_same_numerics(before, run.graph, tol=1e-9)


@pytest.mark.parametrize("algorithm", [a for a in A if a is not A.DEPTHWISE])
def test_float32_outputs_stay_within_the_chosen_algorithms_tolerance(algorithm):
    """Every conv that can computes by `algorithm`; float32 outputs against the float64 reference."""
    graph = mixed_net(DType.FLOAT32, seed=3)
    gold_graph = mixed_net(DType.FLOAT64, seed=3)

    def lookup(spec: ConvSpec):
        best = Candidate(algorithm)
        return Record(best, {best: 1.0}) if why_not(algorithm, spec) is None else None

    _, run = select(graph, lookup=lookup)
    used = Counter(n.attrs.algorithm for n in run.graph.nodes if n.op is FusedConv)
    assert used[algorithm] >= 1
    inputs = random_inputs(gold_graph, seed=5)
    want = run_reference(gold_graph, inputs)
    got = run_reference(run.graph, {k: v.astype(np.float32) for k, v in inputs.items()})
    tolerance = max(F32_TOLERANCE.get(a, F32_DEFAULT) for a in used)
    for name in want:
        assert relative_error(got[name], want[name]) <= tolerance


def test_weights_given_at_run_time_keep_to_kernels_that_need_no_build_time_transform():
    net = Net((1, 16, 24, 24))
    w = net.graph.add_input("w", TensorType((32, 16, 3, 3), DType.FLOAT64))
    graph = net.done(net.node(Conv, net.x, w, pads=(1, 1, 1, 1)))
    before, run = select(graph, pipeline=None)
    (node,) = [n for n in run.graph.nodes if n.op is FusedConv]
    assert node.attrs.algorithm not in (A.WINOGRAD_F2X3, A.WINOGRAD_F4X3, A.FFT)
    (choice,) = run.records[-1].log.choices
    assert any("must be a graph constant" in why for _, why in choice.excluded)
    # a layout that packs the weights is still open to it: the kernel packs them itself, every run
    assert any(c.layout is not None for c, _ in choice.alternatives)
    assert_same_numerics(before, run.graph, tol=1e-9)


def test_the_target_passes_reach_a_fixed_point():
    """select then assign-layouts, twice: the second round changes nothing."""
    layouts = CATALOG["assign-layouts"]
    target_steps = [Step("select-conv-algorithms", lambda g: select_conv_algorithms(g, AVX2)),
                    Step("assign-layouts", layouts.build(layouts.options(lanes=AVX2.vector_lanes)))]
    graph = mixed_net()
    before = graph.copy()
    first = run_pipeline(graph, preset("O3").steps() + target_steps, verify=True)
    text = str(first.graph)
    second = run_pipeline(first.graph, target_steps, verify=True)
    assert not second.changed, [dict(r.log.fired) for r in second.records]
    assert str(second.graph) == text
    assert_same_numerics(before, second.graph, tol=1e-9)


def test_for_a_target_o3_gains_the_target_passes_with_the_targets_options():
    o3 = preset("O3")
    cpu = [(p.name, dict(p.options)) for p in for_target(o3, AVX2).passes][-3:]
    # the choice, the layouts for the whole graph, then the choice again within each conv's layout
    assert cpu == [("select-conv-algorithms", {"target": "llvm:haswell"}), ("assign-layouts", {"lanes": 8}),
                   ("select-conv-algorithms", {"target": "llvm:haswell", "keep_layouts": True})]
    gpu = [p.name for p in for_target(o3, CUDA).passes]
    assert gpu[-2:] == ["select-conv-algorithms"] * 2, "a GPU keeps NCHW: no layout pass"
    assert for_target(preset("O2"), AVX2) == for_target(preset("O2"), CUDA) == preset("O2")
    tuned = for_target(o3, AVX2).with_options("select-conv-algorithms", tuning_cache="cache.json")
    assert dict(tuned.passes[-3].options) == {"target": "llvm:haswell", "tuning_cache": "cache.json"}
    assert dict(tuned.passes[-1].options) == {"target": "llvm:haswell", "tuning_cache": "cache.json",
                                              "keep_layouts": True}


def test_options_name_the_target_and_the_pass_is_listed_without_importing_tvm():
    import subprocess
    import sys

    code = ("import sys; from cnncompile.selection.pipelines import CATALOG; "
            "assert 'select-conv-algorithms' in CATALOG; assert 'tvm' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert SelectOptions().target == "llvm"


def test_a_pipeline_can_leave_algorithms_out(tmp_path):
    """Given the applicable algorithms but `algorithms = ["direct"]`, every conv computes by direct, and
    says why the others were not considered."""
    path = tmp_path / "direct-only.toml"
    path.write_text('base = "O3"\n[[pass]]\nname = "select-conv-algorithms"\ntarget = "llvm:haswell"\n'
                    'algorithms = ["direct"]\n')
    pipeline = load_pipeline(str(path))
    assert pipeline.passes[-1].options["algorithms"] == ["direct"]
    graph = mixed_net()
    before = graph.copy()
    run = run_pipeline(graph, pipeline.steps(), verify=True)
    assert {n.attrs.algorithm for n in run.graph.nodes if n.op is FusedConv} == {A.DIRECT}
    for choice in run.records[-1].log.choices:
        assert {c.algorithm for c, _ in choice.alternatives} == {A.DIRECT}
        left_out = {what for what, why in choice.excluded if "leaves it out" in why}
        assert left_out == {a.value for a in A if a is not A.DIRECT and why_not(a, choice.spec) is None}
    assert_same_numerics(before, run.graph, tol=1e-9)


def test_a_tuning_cache_decides_where_it_holds_the_workload(tmp_path):
    """Measurements stored in cnncompile.tuning's cache for one conv's workload decide that conv; the
    other convs, which the cache lacks, stay with the cost model."""
    from cnncompile.selection.tuning_cache import Result, TuningCache

    graph = mixed_net()
    run_pipeline(graph, preset("O3").steps())
    first = next(n for n in graph.nodes if n.op is FusedConv)
    spec = ConvSpec.of(first.inputs[0].type, first.inputs[1].type, **{
        k: getattr(first.attrs, k) for k in ("strides", "dilations", "pads", "auto_pad", "group")})
    path = tmp_path / "tuning.json"
    TuningCache(path).store(spec, AVX2, {Candidate(A.FFT): Result(1e-4), Candidate(A.DIRECT): Result(3e-4),
                                         Candidate(A.WINOGRAD_F4X3): Result(None, error="did not build")})
    info = CATALOG["select-conv-algorithms"]
    before = graph.copy()
    run = run_pipeline(graph, [Step(info.name, info.build(SelectOptions("llvm:haswell", str(path))))], verify=True)
    choices = run.records[-1].log.choices
    assert (choices[0].chosen, choices[0].source) == (Candidate(A.FFT), ChoiceSource.MEASURED)
    assert choices[0].alternatives == ((Candidate(A.FFT), 1e-4), (Candidate(A.DIRECT), 3e-4))
    assert all(c.source == ChoiceSource.COST_MODEL for c in choices[1:])
    assert next(n for n in run.graph.nodes if n.name == first.name).attrs.algorithm is A.FFT
    assert_same_numerics(before, run.graph, tol=1e-9)
