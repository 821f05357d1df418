"""Every op lowers to TVM and matches the float64 reference on random inputs (LLVM)."""

import re

import numpy as np
import pytest

import cnncompile
from cnncompile.backends.tvm.lowering import LOWERINGS, check_lowerable
from cnncompile.backends.tvm.module import build_primfunc
from cnncompile.backends.tvm.target import parse_target
from cnncompile.errors import UnsupportedError
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.numerics import relative_error, tolerance
from cnncompile.ops import REGISTRY
from cnncompile.ops.registry import declare, per_output, same_as_first

from cases import CASES


def test_every_registered_op_has_a_lowering():
    missing = sorted(name for name, op in REGISTRY.items() if op not in LOWERINGS)
    assert not missing, f"ops without a TVM lowering: {missing}"


def test_every_registered_op_is_checked_numerically():
    assert not set(REGISTRY) - {c.op for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lowering_matches_reference(case):
    graph, feeds = case.build(seed=1)
    compiled = cnncompile.compile(graph, target="llvm", pipeline="O0")
    got = compiled.run(feeds)
    want = cnncompile.run_reference(graph, feeds, dtype=DType.FLOAT64)
    for value in graph.outputs:
        out, ref = got[value.name], want[value.name]
        assert out.dtype == value.type.dtype.numpy and out.shape == ref.shape
        error = relative_error(out, ref)
        assert error <= tolerance(DType.FLOAT32), f"{case.id} output {value.name}: error {error:.3g}"


def test_an_op_without_a_lowering_is_named_before_anything_is_built():
    op = declare("NoLoweringForTest", shape=same_as_first, flops=per_output(1))(lambda x: x)
    try:
        graph = Graph("g")
        x = graph.add_input("x", TensorType((2, 3)))
        (y,) = graph.add_node(op, [x])
        graph.mark_outputs(y)
        with pytest.raises(UnsupportedError, match="NoLoweringForTest: no TVM lowering"):
            check_lowerable(graph)
    finally:
        from cnncompile.ops.registry import _REGISTRY

        del _REGISTRY["NoLoweringForTest"]


def test_identical_nodes_share_one_kernel():
    rng = np.random.default_rng(0)
    graph = Graph("twice")
    x = graph.add_input("x", TensorType((1, 4, 6, 6)))
    w1, w2 = (graph.add_constant(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), "w") for _ in range(2))
    (y,) = graph.add_node(REGISTRY["Conv"], [x, w1], pads=(1, 1, 1, 1))
    (z,) = graph.add_node(REGISTRY["Conv"], [y, w2], pads=(1, 1, 1, 1))
    graph.mark_outputs(z)
    compiled = cnncompile.compile(graph, target="llvm", pipeline="O0")
    assert len({k.symbol for k in compiled.kernels}) == 1


def test_constant_weights_are_packed_for_cpu_vectors_and_run_time_weights_are_not():
    blocked, _ = next(c for c in CASES if c.id == "Conv").build()
    depthwise, _ = next(c for c in CASES if c.id == "Conv-depthwise").build()
    runtime, _ = next(c for c in CASES if c.id == "Conv-weights-as-input").build()
    assert cnncompile.compile(blocked, target="llvm", pipeline="O0").kernels[0].repacks
    assert not cnncompile.compile(depthwise, target="llvm", pipeline="O0").kernels[0].repacks
    assert not cnncompile.compile(runtime, target="llvm", pipeline="O0").kernels[0].repacks


@pytest.mark.parametrize("op, x_shape, w_shape, attrs, stage", [
    ("Gemm", (8, 64), (48, 64), dict(transB=1), "gemm"),
    ("Conv", (1, 8, 6, 6), (48, 8, 3, 3), dict(pads=(1, 1, 1, 1)), "conv"),
], ids=["gemm", "conv"])
def test_blocked_kernels_vectorize_one_register_of_their_channel_block_at_a_time(op, x_shape, w_shape, attrs, stage):
    """A vectorized loop over a 3-vector block reads the packed weights at j // 48: LLVM makes it a gather
    (an 8 x 1008 x 1280 Gemm took 3.2 ms, 0.17 with the vectors unrolled)."""
    target = parse_target("llvm:skylake-avx512")  # built, not run: 16 lanes, 32 registers fit 3-vector tiles
    rng = np.random.default_rng(0)
    graph = Graph("blocked")
    x = graph.add_input("x", TensorType(x_shape))
    w = graph.add_constant(rng.standard_normal(w_shape).astype(np.float32), "w")
    (y,) = graph.add_node(REGISTRY[op], [x, w], **attrs)
    graph.mark_outputs(y)
    (node,) = graph.nodes
    func, kernel = build_primfunc(node, (False, True), target, "blocked")
    assert kernel.tile.vectors == 3
    (width,) = re.findall(rf"T\.vectorized\((\d+)\):\s*with T\.sblock\(\"{stage}_update\"\)", func.script())
    assert int(width) == target.vector_lanes
