"""The liveness plan: values live from their node to their last reader; the peak by hand."""

import numpy as np

from cnncompile import Graph, TensorType
from cnncompile.ir.liveness import plan_memory
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Dropout, Relu

MB = 4 * 16 * 16 * 16  # bytes of one float32 [1, 16, 16, 16] activation


def test_a_chain_holds_two_activations_at_a_time():
    g = Graph()
    x = g.add_input("x", TensorType((1, 16, 16, 16)))
    y = x
    for _ in range(3):
        (y,) = g.add_node(Relu, [y])
    g.mark_outputs(y)
    plan = plan_memory(g)
    assert plan.live_bytes == (2 * MB, 2 * MB, 2 * MB) and plan.peak_bytes == 2 * MB


def test_a_residual_keeps_its_input_alive_and_weights_do_not_count():
    g = Graph()
    x = g.add_input("x", TensorType((1, 16, 16, 16)))
    w = g.add_constant(np.ones((16, 16, 1, 1), np.float32), "w")
    (a,) = g.add_node(Conv, [x, w], name="a")
    (b,) = g.add_node(Relu, [a], name="b")
    (c,) = g.add_node(Add, [b, x], name="c")
    g.mark_outputs(c)
    plan = plan_memory(g)
    assert plan.live_bytes == (2 * MB, 3 * MB, 3 * MB)
    assert (plan.peak_bytes, plan.peak_node) == (3 * MB, "b")


def test_an_output_nobody_reads_is_freed_at_once():
    g = Graph()
    x = g.add_input("x", TensorType((1, 16, 16, 16)))
    out, _mask = g.add_node(Dropout, [x])
    (y,) = g.add_node(Relu, [out])
    g.mark_outputs(y)
    mask_bytes = 16 * 16 * 16
    assert plan_memory(g).live_bytes == (2 * MB + mask_bytes, 2 * MB)
