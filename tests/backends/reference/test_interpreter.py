"""The reference computes in the element type it is given: float64 (the gold standard) or float32."""

import numpy as np
import pytest

import cnncompile
from cnncompile import DType, Graph, TensorType
from cnncompile.ops.elementwise import Relu


def relu_graph() -> Graph:
    graph = Graph("relu")
    x = graph.add_input("x", TensorType((2, 3)))
    graph.mark_outputs(*graph.add_node(Relu, [x]))
    return graph


def test_float64_by_default_float32_on_request():
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    (gold,) = cnncompile.run_reference(relu_graph(), {"x": x}).values()
    (fast,) = cnncompile.run_reference(relu_graph(), {"x": x}, dtype=DType.FLOAT32).values()
    assert gold.dtype == np.float64 and fast.dtype == np.float32
    np.testing.assert_array_equal(gold, np.maximum(x, 0).astype(np.float64))


@pytest.mark.parametrize("dtype", [DType.FLOAT16, DType.INT32, "float32"], ids=str)
def test_other_dtypes_are_refused(dtype):
    with pytest.raises(cnncompile.CnnCompileError, match="computes in DType.FLOAT32 or DType.FLOAT64"):
        cnncompile.run_reference(relu_graph(), {"x": np.zeros((2, 3), np.float32)}, dtype=dtype)
