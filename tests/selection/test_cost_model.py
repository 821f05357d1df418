"""The cost model: FLOP counts derived by hand, rankings that follow from them, never an inapplicable pick."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncompile.algorithms.applicability import ConvAlgorithm, why_not
from cnncompile.backends.tvm.plan import Dot
from cnncompile.backends.tvm.target import Device, TargetSpec
from cnncompile.ir.types import DType, nchwc
from cnncompile.selection.candidates import Candidate, candidates, plan_of
from cnncompile.selection.cost import estimate, work
from selection_harness import AVX2, AVX512, CUDA, conv_specs, spec_of


def work_of(algorithm, spec, lanes=8):
    """The cost model's work for the kernel the backend plans for `algorithm` in NCHW on an AVX2 CPU."""
    return work(plan_of(Candidate(algorithm), spec, AVX2), lanes)


def estimated(candidate, spec, target):
    return estimate(candidate, plan_of(candidate, spec, target), target)

A = ConvAlgorithm


def test_direct_flops_are_two_per_multiply_add():
    spec = spec_of(c=64, o=64, size=(56, 56))
    assert work_of(A.DIRECT, spec).flops == 2 * 64 * 64 * 9 * 56 * 56
    assert work_of(A.IM2COL_GEMM, spec).flops == work_of(A.DIRECT, spec).flops


@pytest.mark.parametrize("algorithm, m", [(A.WINOGRAD_F2X3, 2), (A.WINOGRAD_F4X3, 4)])
def test_winograd_flops_by_hand(algorithm, m):
    """56x56 splits into whole m x m tiles; alpha = m + 2. Transforms: B^T d B is two alpha x alpha x
    alpha products per tile and input channel, A^T M A an (m x alpha x alpha) and an (m x alpha x m)
    product per tile and output channel; in between alpha^2 products of (tiles x C) by (C x K)."""
    spec = spec_of(c=64, o=32, size=(56, 56))
    alpha, tiles = m + 2, (56 // m) ** 2
    product = 2 * alpha ** 2 * tiles * 64 * 32
    transforms = 4 * alpha ** 3 * tiles * 64 + (2 * m * alpha ** 2 + 2 * m * m * alpha) * tiles * 32
    assert work_of(algorithm, spec).flops == product + transforms
    # the element-wise product does alpha^2 multiplies per tile where direct does 9 m^2
    assert product / work_of(A.DIRECT, spec).flops == pytest.approx(alpha ** 2 / (9 * m * m))


def test_fft_is_dense_dft_and_grows_with_the_image_not_the_kernel():
    """16 -> 16 channels, 32x32 padded by 1: L = 34, half spectrum 18 rounded up to 24 (8 lanes).
    Forward per input field: the real last axis (2 parts x 34 x 24 outputs, 34 terms), then the
    complex first axis (2 x 34 x 24 outputs, 2 x 34 terms); inverse per output field: the first
    axis to 32 rows (2 x 32 x 24 outputs, 2 x 34 terms), the last to 32 real columns (2 x 24
    terms); between them 8 flops per frequency and channel pair."""
    small, large = spec_of(c=16, o=16, size=(32, 32), kernel=3), spec_of(c=16, o=16, size=(32, 32), kernel=7, pad=3)
    forward = 2 * (2 * 34 * 24 * 34) + 2 * (2 * 34 * 24 * 68)
    inverse = 2 * (2 * 32 * 24 * 68) + 2 * (32 * 32 * 48)
    products = 8 * 34 * 24 * 16 * 16
    assert work_of(A.FFT, small, lanes=8).flops == 16 * forward + 16 * inverse + products
    assert work_of(A.FFT, large).flops / work_of(A.FFT, small).flops < 1.5
    assert work_of(A.DIRECT, large).flops / work_of(A.DIRECT, small).flops == pytest.approx(49 / 9)


def test_im2col_moves_its_unrolled_matrix():
    spec = spec_of(c=64, o=64, size=(56, 56))
    unrolled = 64 * 9 * 56 * 56 * 4
    assert work_of(A.IM2COL_GEMM, spec).bytes - work_of(A.DIRECT, spec).bytes == 2 * unrolled


@pytest.mark.parametrize("channels, size", [(64, 56), (128, 28), (256, 28), (512, 14)])
def test_winograd_below_direct_flops_wise_on_big_3x3_layers(channels, size):
    spec = spec_of(c=channels, o=channels, size=(size, size))
    direct = work_of(A.DIRECT, spec).flops
    assert work_of(A.WINOGRAD_F4X3, spec).flops < work_of(A.WINOGRAD_F2X3, spec).flops < direct
    assert work_of(A.WINOGRAD_F4X3, spec).flops < direct / 2


@pytest.mark.parametrize("target", [AVX2, AVX512, CUDA])
def test_the_estimates_follow_the_flops_within_one_algorithm(target):
    """Same algorithm and layout, twice the channels: about four times the work and the time."""
    for candidate in (Candidate(A.DIRECT), Candidate(A.WINOGRAD_F4X3), Candidate(A.IM2COL_GEMM)):
        small = estimated(candidate, spec_of(c=256, o=256, size=(56, 56)), target).seconds
        large = estimated(candidate, spec_of(c=512, o=512, size=(56, 56)), target).seconds
        assert 2.5 < large / small <= 4


def test_a_1x1_layer_prefers_a_gemm_shaped_kernel_over_unrolling():
    spec = spec_of(c=256, o=64, size=(56, 56), kernel=1, pad=0)
    best = min(candidates(spec, AVX2), key=lambda c: estimated(c, spec, AVX2).seconds)
    assert best.algorithm in (A.GEMM_1X1, A.DIRECT)
    assert estimated(Candidate(A.GEMM_1X1), spec, AVX2).seconds < estimated(Candidate(A.IM2COL_GEMM), spec,
                                                                            AVX2).seconds


@settings(max_examples=100, deadline=None)
@given(spec=conv_specs(), target=st.sampled_from([AVX2, CUDA]))
def test_the_cheapest_candidate_always_applies_and_costs_something(spec, target):
    estimates = [estimated(c, spec, target) for c in candidates(spec, target)]
    best = min(estimates, key=lambda e: e.seconds)
    assert why_not(best.candidate.algorithm, spec) is None
    assert all(math.isfinite(e.seconds) and e.seconds > 0 and e.work.intensity > 0 for e in estimates)


def test_a_bf16_conv_is_estimated_as_measured_where_avx512_bf16_does_its_pairs():
    """benchmarks/bf16_kernels.py measured the NCHW16c direct kernel of 3x3 128->128 @28 (reading NCHW16c)
    at 1.93x float32's speed with vdpbf16ps and at 0.99x with its bf16 operands widened before each FMA."""
    fp32 = spec_of(c=128, o=128, size=(28, 28))
    bf16 = dataclasses.replace(fp32, dtype=DType.BFLOAT16)
    blocked = Candidate(A.DIRECT, nchwc(16))
    with_pairs = TargetSpec(Device.LLVM, "sapphirerapids")

    def seconds(spec, target, dot):
        plan = plan_of(blocked, spec, target, nchwc(16))
        assert plan.dot is dot
        return estimate(blocked, plan, target).seconds

    pairs = seconds(bf16, with_pairs, Dot.BF16_PAIRS)
    assert 1.4 < seconds(fp32, with_pairs, Dot.FMA) / pairs < 2.5
    assert 1.4 < seconds(bf16, AVX512, Dot.FMA) / pairs < 2.5
