"""The rewrite language: matching by kind and wiring, bindings, constraints with reasons,
commutative operands, optional inputs, benefit order, output names, and the loop guard."""

import numpy as np
import pytest

from cnncompile.errors import PassError
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Identity, Mul, Relu, Sigmoid, Tanh
from cnncompile.passes import pattern as P
from cnncompile.passes.pattern import Match
from cnncompile.passes.rewrite import apply_rules
from pass_harness import Net, assert_same_numerics, ops

CONV = P.op(Conv, P.var("x"), P.const("w", single_use=True), P.opt(P.const("b")), name="conv", single_use=True)


@P.rule(P.op(Relu, CONV))
def relu_to_tanh(m: Match):
    """A toy rewrite: Conv -> Relu becomes Conv -> Tanh (checks wiring, not numerics)."""
    return m.add_node(Tanh, [m["conv"]])


def conv_relu(shared: bool = False, extra_reader: bool = False):
    net = Net((1, 3, 6, 6))
    y = net.conv(net.x, 4)
    outs = [net.node(Relu, y)]
    if shared:
        outs.append(net.node(Relu, net.conv(net.x, 4, weight=net.graph.nodes[0].inputs[1])))
    if extra_reader:
        outs.append(net.node(Sigmoid, y))
    return net.done(*outs)


def test_binds_values_nodes_and_constants():
    seen = {}

    @P.rule(P.op(Relu, CONV, name="act"))
    def probe(m: Match):
        seen.update(x=m["x"], b=m["b"], w=m.const("w"), conv=m.node("conv"), act=m.node("act"))
        return [m["conv"]]

    graph = conv_relu()
    conv = graph.nodes[0]
    log = apply_rules(graph, [probe])
    assert log.fired == {"probe": 1}
    assert seen["x"] is graph.inputs[0] and seen["conv"] is conv and seen["act"].op is Relu
    assert seen["b"] is conv.inputs[2] and isinstance(seen["w"], np.ndarray)
    assert ops(graph) == {"Conv": 1}


def test_an_absent_optional_input_binds_none():
    net = Net((1, 3, 6, 6))
    graph = net.done(net.node(Relu, net.conv(net.x, 4, bias=False)))
    bias = []

    @P.rule(P.op(Relu, CONV))
    def probe(m: Match):
        bias.append(m["b"])
        return [m["conv"]]

    apply_rules(graph, [probe])
    assert bias == [None]


def test_the_rewrite_replaces_the_matched_ops_and_keeps_the_output_name():
    graph = conv_relu()
    name = graph.outputs[0].name
    log = apply_rules(graph, [relu_to_tanh])
    assert log.fired == {"relu-to-tanh": 1}
    assert ops(graph) == {"Conv": 1, "Tanh": 1}
    assert graph.outputs[0].name == name and graph.nodes[-1].op is Tanh


@pytest.mark.parametrize("case, reason", [
    ("shared", "'w' (%w) is shared (also read by node 'conv_1')"),
    ("extra_reader", "node 'conv' (Conv): its output %conv is also read by node 'sigmoid'"),
])
def test_constraints_reject_with_a_reason(case, reason):
    graph = conv_relu(**{case: True})
    log = apply_rules(graph, [relu_to_tanh])
    assert not log and ops(graph)["Tanh"] == 0
    assert reason in [r.reason for r in log.rejections]
    assert str(log.rejections[0]).startswith("relu-to-tanh declined at node 'relu")


def test_a_non_constant_where_a_constant_is_required():
    net = Net((1, 3, 6, 6))
    w = net.graph.add_input("w", net.he((4, 3, 3, 3), 27).type)
    graph = net.done(net.node(Relu, net.node(Conv, net.x, w, pads=(1, 1, 1, 1))))
    log = apply_rules(graph, [relu_to_tanh])
    assert [r.reason for r in log.rejections] == ["'w' (%w_1) is not a constant"]


def test_attr_and_shape_predicates():
    undilated = P.where(lambda a: not a.dilations or set(a.dilations) == {1}, "the conv is dilated")
    small = P.where(lambda t: t.shape[1] <= 4, "more than 4 channels")

    def rule_with(attrs=(), shape=()):
        @P.rule(P.op(Relu, P.op(Conv, P.var("x"), P.var("w"), P.opt(P.var("b")), name="conv", attrs=attrs,
                                shape=shape)))
        def drop_relu(m: Match):
            return [m["conv"]]
        return drop_relu

    net = Net((1, 3, 8, 8))
    graph = net.done(net.node(Relu, net.conv(net.x, 8, dilation=2)))
    log = apply_rules(graph.copy(), [rule_with(attrs=undilated)])
    assert [r.reason for r in log.rejections] == ["node 'conv' (Conv): the conv is dilated"]
    log = apply_rules(graph.copy(), [rule_with(shape=small)])
    assert [r.reason for r in log.rejections] == ["node 'conv' (Conv): more than 4 channels"]


def test_commutative_operands_match_either_way():
    @P.rule(P.op(Add, CONV, P.const("k")))
    def fold_shift(m: Match):
        conv = m.node("conv")
        bias = m.add_constant(m.const("b") + m.const("k").reshape(-1), "b")
        return m.add_node(Conv, [m["x"], m["w"], bias], conv.attrs, name=conv.name)

    for order in (lambda y, k: (y, k), lambda y, k: (k, y)):
        net = Net((1, 3, 6, 6))
        y = net.conv(net.x, 4)
        graph = net.done(net.node(Add, *order(y, net.const(np.arange(4.0).reshape(4, 1, 1), "k"))))
        before = graph.copy()
        assert apply_rules(graph, [fold_shift]).fired == {"fold-shift": 1}
        assert ops(graph) == {"Conv": 1}
        assert_same_numerics(before, graph)


def test_a_repeated_name_must_meet_the_same_value():
    x = P.var("x")
    silu_rule = P.rule(P.op(Mul, x, P.op(Sigmoid, x)))(lambda m: [m["x"]])
    net = Net((1, 2, 3, 3))
    a, b = net.node(Relu, net.x), net.node(Tanh, net.x)
    graph = net.done(net.node(Mul, a, net.node(Sigmoid, b)), net.node(Mul, net.node(Sigmoid, a), a))
    log = apply_rules(graph, [silu_rule])
    assert log.fired == {"<lambda>": 1}  # only x * Sigmoid(x), written either way round
    assert ops(graph) == {"Relu": 1, "Tanh": 1, "Sigmoid": 1, "Mul": 1}


def test_benefit_defaults_to_size_and_bigger_patterns_win():
    @P.rule(P.op(Relu, P.op(Conv, P.var("x"), P.var("w"), P.opt(P.var("b")), name="conv", single_use=True)))
    def small(m: Match):
        return [m["conv"]]

    @P.rule(P.op(Relu, P.op(Add, P.op(Conv, P.var("x"), P.var("w"), P.opt(P.var("b")), name="conv",
                                      single_use=True), P.var("z"))))
    def big(m: Match):
        return m.add_node(Add, [m["conv"], m["z"]])

    assert (small.benefit, big.benefit) == (2, 3)
    net = Net((1, 4, 6, 6))
    graph = net.done(net.node(Relu, net.node(Add, net.conv(net.x, 4), net.x)))
    log = apply_rules(graph, [small, big])
    assert log.fired == {"big": 1}


def test_removing_a_node_between_a_graph_input_and_output_is_declined():
    net = Net((1, 2, 3, 3))
    graph = net.done(net.node(Identity, net.x))
    log = apply_rules(graph, [P.rule(P.op(Identity, P.var("x")))(lambda m: [m["x"]])])
    assert not log and "is itself a graph input" in log.rejections[0].reason


def test_two_rules_undoing_each_other_hit_the_loop_guard():
    to_tanh = P.rule(P.op(Relu, P.var("x")))(lambda m: m.add_node(Tanh, [m["x"]]))
    to_relu = P.rule(P.op(Tanh, P.var("x")))(lambda m: m.add_node(Relu, [m["x"]]))
    net = Net((1, 2, 3, 3))
    graph = net.done(net.node(Relu, net.x))
    with pytest.raises(PassError, match="did not reach a fixed point after 32 rounds; still firing: <lambda>"):
        apply_rules(graph, [to_tanh, to_relu])


def test_a_rewrite_of_the_wrong_type_is_a_pass_error():
    net = Net((1, 2, 4, 4))
    graph = net.done(net.node(Relu, net.x))
    wrong = P.rule(P.op(Relu, P.var("x")))(
        lambda m: m.add_node(Conv, [m["x"], m.add_constant(np.ones((3, 2, 1, 1)), "w")]))
    with pytest.raises(PassError, match="replaced %relu float64\\[1x2x4x4\\] by"):
        apply_rules(graph, [wrong])


def test_rule_sets_are_lists_that_combine():
    from cnncompile.passes.batchnorm import FOLD_BATCHNORM_RULES
    from cnncompile.passes.cleanup import IDENTITY_RULES

    combined = IDENTITY_RULES + FOLD_BATCHNORM_RULES
    assert [r.name for r in combined][:2] == ["remove-identity", "remove-dropout"]
    assert all(r.doc for r in combined)
