"""The pass manager: records, the verifier after each pass, --dump-after, and --check-each-pass
naming a deliberately wrong fold."""

import numpy as np
import pytest

from cnncompile.errors import PassError
from cnncompile.ir.graph import Value
from cnncompile.ir.types import DType
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Cast, Relu
from cnncompile.passes import Step, float64_twin, preset, run_pipeline
from cnncompile.passes import pattern as P
from cnncompile.passes.batchnorm import bn_affine, bn_after, fold_into_conv, weighted
from cnncompile.passes.pattern import Match
from cnncompile.passes.rewrite import RewriteLog, rule_pass
from cnncompile.tools.compare import reference_check
from pass_harness import Net, random_inputs


def resnet_like(dtype: DType = DType.FLOAT64):
    net = Net((1, 4, 8, 8), dtype=dtype)
    y = net.node(Relu, net.bn(net.conv(net.x, 8, bias=False)))
    y = net.node(Relu, net.bn(net.conv(y, 8, bias=False)))
    return net.done(y)


@P.rule(bn_after(weighted(Conv, "conv")))
def fold_bn_forgetting_epsilon(m: Match) -> list[Value]:
    """A plausible bug: the fold divides by sqrt(var), not sqrt(var + epsilon)."""
    conv = m.node("conv")
    a, c = bn_affine(m.const("scale"), m.const("shift"), m.const("mean"), m.const("var"), 0.0)
    w, b = fold_into_conv(m.const("w"), m.const("b"), a, c)
    return m.add_node(Conv, [m["x"], m.add_constant(w, "w"), m.add_constant(b, "b")], conv.attrs, name=conv.name)


def test_records_time_node_counts_and_what_fired():
    run = run_pipeline(resnet_like(), preset("O3").steps())
    assert [r.name for r in run.records] == [p.name for p in preset("O3").passes]
    fold = next(r for r in run.records if r.name == "fold-batchnorm")
    assert (fold.nodes_before, fold.nodes_after, dict(fold.log.fired)) == (6, 4, {"fold-bn-into-conv": 2})
    assert all(r.seconds >= 0 for r in run.records) and run.seconds == sum(r.seconds for r in run.records)
    assert "fold-batchnorm" in run.report() and "6 ->    4 nodes" in run.report()


def test_the_verifier_names_the_pass_that_broke_the_ir():
    def corrupt(graph):
        graph.nodes.reverse()  # out of topological order
        return graph, RewriteLog()

    steps = [*preset("O1").steps(), Step("corrupt", corrupt)]
    with pytest.raises(PassError, match="after pass 'corrupt': node .* is produced later"):
        run_pipeline(resnet_like(), steps, verify=True)


def test_dump_after_shows_the_ir_after_that_pass():
    dumps = []
    run_pipeline(resnet_like(), preset("O3").steps(), dump_after={"fold-batchnorm"},
                 dump=lambda name, graph: dumps.append((name, str(graph))))
    assert len(dumps) == 1 and dumps[0][0] == "fold-batchnorm"
    assert "BatchNormalization" not in dumps[0][1] and "= Relu(" in dumps[0][1]


def test_dump_after_a_pass_the_pipeline_does_not_run():
    with pytest.raises(PassError, match="--dump-after names fold-everything"):
        run_pipeline(resnet_like(), preset("O1").steps(), dump_after={"fold-everything"})


@pytest.mark.parametrize("dtype", [DType.FLOAT64, DType.FLOAT32])
def test_check_each_pass_names_a_wrong_fold(dtype):
    graph = resnet_like(dtype)
    broken = rule_pass([fold_bn_forgetting_epsilon])
    steps = [Step(s.name, s.run) if s.name != "fold-batchnorm" else Step("fold-batchnorm (broken)", broken)
             for s in preset("O3").steps()]
    run = run_pipeline(graph, steps, check=reference_check(random_inputs(graph)))
    bad = run.first_divergence
    assert bad is not None and bad.name == "fold-batchnorm (broken)"
    assert 1e-8 < bad.error < 1e-2  # a subtle error (eps = 1e-5 against var ~ 1), found all the same
    assert all(r.error <= 1e-12 for r in run.records if r is not bad)
    assert "FAIL" in run.report()


def test_check_each_pass_passes_the_real_folds_on_float32():
    graph = resnet_like(DType.FLOAT32)
    run = run_pipeline(graph, preset("O3").steps(), check=reference_check(random_inputs(graph)))
    assert run.first_divergence is None and max(r.error for r in run.records) < 1e-13
    assert graph.nodes[0].outputs[0].type.dtype is DType.FLOAT32  # the twin, not the graph, went to float64


def test_float64_twin_promotes_types_constants_and_casts():
    net = Net((1, 2, 4, 4), dtype=DType.FLOAT32)
    y = net.node(Cast, net.node(Relu, net.x), to=DType.FLOAT32)
    graph = net.done(net.node(Conv, y, net.he((3, 2, 1, 1), 2)))
    twin = float64_twin(graph)
    assert {v.type.dtype for v in twin.values()} == {DType.FLOAT64}
    assert all(a.dtype == np.float64 for a in twin.constants.values())
    assert twin.nodes[1].attrs.to is DType.FLOAT64
    assert {v.type.dtype for v in graph.values()} == {DType.FLOAT32}
    assert str(graph) != str(twin) and len(twin.nodes) == len(graph.nodes)
