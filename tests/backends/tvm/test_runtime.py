"""The compiled model's NumPy interface: inputs of every rank reach the VM as the signature declares."""

import numpy as np

import cnncompile
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import TensorType
from cnncompile.ops.elementwise import Add, Mul


def test_a_scalar_input_stays_a_scalar():
    """np.ascontiguousarray makes a 0-d array 1-d, which the VM refused as the wrong rank."""
    graph = Graph("scale")
    x = graph.add_input("x", TensorType((2, 3)))
    k = graph.add_input("k", TensorType(()))
    (y,) = graph.add_node(Mul, [x, k])
    (z,) = graph.add_node(Add, [y, k])
    graph.mark_outputs(z)
    model = cnncompile.compile(graph, target="llvm", pipeline="O0")
    x_value = np.arange(6, dtype=np.float32).reshape(2, 3)
    outputs = model.run({"x": x_value, "k": np.float32(2.5)})
    np.testing.assert_array_equal(next(iter(outputs.values())), x_value * 2.5 + 2.5)
    (mul,) = model.run_node(graph.nodes[0].name, [x_value, np.float32(2.5)])
    np.testing.assert_array_equal(mul, x_value * 2.5)
