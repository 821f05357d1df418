"""Graph building, deterministic naming, the printer and the networkx view."""

import networkx as nx
import numpy as np

from cnncompile import Graph, TensorType
from cnncompile.ir.types import DType, Layout, LayoutKind
from cnncompile.ops.conv import Conv
from cnncompile.ops.elementwise import Add, Relu


def residual_block() -> Graph:
    graph = Graph("block")
    x = graph.add_input("x", TensorType((1, 4, 8, 8)))
    w = graph.add_constant(np.ones((4, 4, 3, 3), np.float32), "w")
    (y,) = graph.add_node(Conv, [x, w], pads=(1, 1, 1, 1))
    (r,) = graph.add_node(Relu, [y])
    (s,) = graph.add_node(Add, [r, x])
    graph.mark_outputs(s)
    return graph


def test_shapes_are_inferred_when_nodes_are_added():
    graph = residual_block()
    assert [n.outputs[0].type.shape for n in graph.nodes] == [(1, 4, 8, 8)] * 3
    assert graph.outputs[0].type.dtype is DType.FLOAT32


def test_names_are_deterministic_and_unique():
    first, second = residual_block(), residual_block()
    assert [n.name for n in first.nodes] == [n.name for n in second.nodes] == ["conv", "relu", "add"]
    graph = Graph()
    names = [graph.fresh_name("t") for _ in range(3)]
    assert names == ["t", "t_1", "t_2"]
    assert graph.fresh_name("t", kind="node") == "t"


def test_printer_shows_one_line_per_node_with_shapes_and_attrs():
    text = str(residual_block())
    node_lines = [line for line in text.splitlines() if "= Conv" in line or "= Relu" in line or "= Add" in line]
    assert len(node_lines) == 3
    assert "%conv: float32[1x4x8x8] = Conv(%x, %w) {pads=[1,1,1,1]}  # conv" in text


def test_networkx_view_has_every_edge():
    dag = residual_block().to_networkx()
    assert nx.is_directed_acyclic_graph(dag)
    assert set(dag.successors("x")) == {"conv", "add"}
    assert list(nx.topological_sort(dag))[-1] == "add"
    assert dag.nodes["conv"]["op"] == "Conv"


def test_consumers_and_last_uses():
    graph = residual_block()
    x = graph.inputs[0]
    assert [n.name for n in graph.consumers()[x]] == ["conv", "add"]
    freed = graph.last_uses()
    assert {v.name for v in freed[2]} == {"relu", "x"}


def test_layouts_print_their_block():
    assert str(Layout(LayoutKind.NCHWC, 16)) == "NCHW16c"
    assert str(TensorType((1, 2, 3, 4, 16), layout=Layout(LayoutKind.NCHWC, 16))) == "float32[1x2x3x4x16] NCHW16c"
