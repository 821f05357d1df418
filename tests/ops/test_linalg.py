"""Gemm and MatMul against onnxruntime: transposes, alpha/beta, C broadcasting, NumPy matmul shapes."""

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops import REGISTRY
from onnx_harness import check_node, he_normal

M, K, N = 5, 7, 3


@pytest.mark.parametrize("transA", [0, 1])
@pytest.mark.parametrize("transB", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (M, N), (N,), (1, N), (M, 1), ()])
@pytest.mark.parametrize("scales", [{}, {"alpha": 0.5, "beta": -2.0}])
def test_gemm_matches_onnxruntime(transA, transB, c_shape, scales):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((K, M) if transA else (M, K)).astype(np.float32)
    constants = {"b": he_normal(rng, (N, K) if transB else (K, N), fan_in=K)}
    if c_shape is not None:
        constants["c"] = np.asarray(rng.standard_normal(c_shape), np.float32)
    check_node("Gemm", {"a": a}, constants, transA=transA, transB=transB, **scales)


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
        ((2, 3, 4), (4, 5)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
        ((2, 1, 3, 4), (5, 4, 6)), ((3, 4), (2, 4, 5)),
    ],
)
def test_matmul_follows_numpy_semantics(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    check_node("MatMul", {"a": a, "b": b})


def _infer(op, *shapes, **attrs):
    return REGISTRY[op].infer([TensorType(s) for s in shapes], REGISTRY[op].make_attrs(**attrs))


@pytest.mark.parametrize(
    "shapes, attrs, message",
    [
        (((M, K), (N, K)), {}, r"A .* gives K=7 but B .* gives K=3.*transA/transB"),
        (((K, M), (K, N)), {}, r"inner dims must agree"),
        (((M, K), (K, N), (M + 1, N)), {}, r"C float32\[6x3\] does not broadcast to the output shape \[5, 3\]"),
        (((M, K), (K, N), (N, 1)), {}, r"does not broadcast"),
        (((2, M, K), (K, N)), {}, r"2-D A and B.*MatMul"),
    ],
)
def test_gemm_rejects_bad_shapes(shapes, attrs, message):
    with pytest.raises(ShapeError, match=message):
        _infer("Gemm", *shapes, **attrs)


@pytest.mark.parametrize(
    "shapes, message",
    [
        (((3, 4), (5, 6)), r"K=4 in its last dim but B .* K=5 in its second-to-last"),
        (((3, 4), (5,)), r"K=5 in its only dim"),
        (((2, 3, 4), (3, 4, 5)), r"batch dims .* \(\[2\] and \[3\]\) do not broadcast"),
        (((), (4,)), r"rank >= 1"),
    ],
)
def test_matmul_rejects_bad_shapes(shapes, message):
    with pytest.raises(ShapeError, match=message):
        _infer("MatMul", *shapes)


def test_flops_count_two_per_multiply_add():
    gemm = REGISTRY["Gemm"]
    a, b, c, y = TensorType((K, M)), TensorType((K, N)), TensorType((N,)), TensorType((M, N))
    attrs = gemm.make_attrs(transA=1)
    assert gemm.flops([a, b], [y], attrs) == 2 * M * N * K
    assert gemm.flops([a, b, c], [y], attrs) == 2 * M * N * K + 2 * M * N
    matmul = REGISTRY["MatMul"]
    out = _infer("MatMul", (2, 1, 3, 4), (5, 4, 6))[0]
    assert out.shape == (2, 5, 3, 6)
    inputs = [TensorType((2, 1, 3, 4)), TensorType((5, 4, 6))]
    assert matmul.flops(inputs, [out], matmul.make_attrs()) == 2 * (2 * 5) * 3 * 6 * 4
