"""The numerical policy as DESIGN.md states it: the bounds are written out here, not read
from cnncompile.numerics, so a change to either shows up as a failure."""

import numpy as np
import pytest

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.errors import CnnCompileError
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error, tolerance

A = ConvAlgorithm


def test_element_types():
    assert tolerance(DType.FLOAT32) == 1e-5
    assert tolerance(DType.FLOAT16) == 1e-2


@pytest.mark.parametrize("algorithm, bound", [
    (A.DIRECT, 1e-5), (A.IM2COL_GEMM, 1e-5), (A.GEMM_1X1, 1e-5), (A.DEPTHWISE, 1e-5),
    (A.WINOGRAD_F2X3, 1e-4), (A.WINOGRAD_F4X3, 1e-3), (A.FFT, 1e-4),
], ids=lambda p: getattr(p, "value", None))
def test_float32_by_algorithm(algorithm, bound):
    assert tolerance(DType.FLOAT32, algorithm) == bound


def test_the_looser_of_element_type_and_algorithm():
    assert tolerance(DType.FLOAT16, A.WINOGRAD_F4X3) == 1e-2
    assert tolerance(DType.FLOAT16, A.DIRECT) == 1e-2


@pytest.mark.parametrize("dtype", [DType.INT64, DType.BOOL, DType.FLOAT64], ids=lambda d: d.value)
def test_no_bound_outside_the_policy(dtype):
    with pytest.raises(CnnCompileError, match=f"no tolerance for {dtype.value}"):
        tolerance(dtype)


def test_error_is_relative_to_the_largest_reference_magnitude():
    ref = np.array([4.0, -2.0, 1.0])
    assert relative_error(ref + [0.0, 0.0, 0.04], ref) == pytest.approx(0.01)
    assert relative_error(np.zeros(2), np.array([0.0, 1e-9])) == pytest.approx(1e-9 / 1e-6)


def test_non_finite_where_the_reference_is_finite_fails():
    assert relative_error(np.array([1.0, np.nan]), np.array([1.0, 2.0])) == float("inf")
    assert relative_error(np.array([1.0, np.inf]), np.array([1.0, 2.0])) == float("inf")
