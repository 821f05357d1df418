"""Candidates: only applicable algorithms, only layouts their kernels can write, tiles that fit.

The oracle is the applicability rules (why_not / why_not_layout) and the register budget
of tiling.py, checked on each candidate; the random workloads come from hypothesis.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncompile.algorithms.applicability import ConvAlgorithm, applicable, why_not, why_not_layout
from cnncompile.backends.tvm.tiling import SPARE_REGISTERS, registers
from cnncompile.errors import CnnCompileError
from cnncompile.ir.types import MIN_BLOCK, NHWC, LayoutKind, TensorType, channel_block, nchwc
from cnncompile.ops.fused import FusedConvAttrs
from cnncompile.selection.candidates import Candidate, apply_candidate, candidates
from selection_harness import AVX2, AVX512, CUDA, conv_specs, spec_of

@settings(max_examples=150, deadline=None)
@given(spec=conv_specs(), target=st.sampled_from([AVX2, AVX512, CUDA]))
def test_every_candidate_applies_and_every_applicable_algorithm_has_one(spec, target):
    found = candidates(spec, target)
    assert len(set(found)) == len(found), "a candidate is offered twice"
    assert {c.algorithm for c in found} == set(applicable(spec))
    x = TensorType((spec.batch, spec.in_channels, *spec.spatial))
    y_shape = (spec.batch, spec.out_channels, *spec.out)
    for c in found:
        assert why_not(c.algorithm, spec) is None
        assert why_not_layout(c.algorithm, c.layout, x, y_shape) is None, str(c)
        if target.is_gpu:
            assert c.layout is None and not c.tile
        if c.layout is not None and c.layout.kind is LayoutKind.NCHWC:
            block = c.layout.block
            # X is read blocked alike, or, when its channels take no block at all, in NCHW (an image's 3 channels)
            read = (spec.in_channels,) if spec.in_channels % block == 0 else ()
            assert read or spec.in_channels % MIN_BLOCK  # every block is a multiple of the smallest
            assert spec.out_channels % block == 0
            assert block * 2 > target.vector_lanes or any(n % (2 * block) for n in (*read, spec.out_channels))
        if c.tile and c.algorithm.winograd_tile:
            # (output-channel blocks, 1, Winograd tiles): m x m tiles cover the output, the last overhanging
            vectors, rows, cols = c.tile
            m = c.algorithm.winograd_tile
            count = spec.batch * ((spec.out[0] + m - 1) // m) * ((spec.out[1] + m - 1) // m)
            assert c.layout.kind is LayoutKind.NCHWC and rows == 1
            assert (spec.out_channels // c.layout.block) % vectors == 0 and count % cols == 0
            assert vectors * cols + vectors + SPARE_REGISTERS <= registers(target.vector_lanes)
        elif c.tile and c.layout is not None:
            # a stored conv's vectors are of its channel loop's width (the block, or all NHWC channels); a
            # one-row tile runs along the flattened image, any width that fits in it
            vectors, rows, cols = c.tile
            inner = spec.out_channels if c.layout.kind is LayoutKind.NHWC else c.layout.block
            width = max(d for d in range(1, min(inner, target.vector_lanes) + 1) if inner % d == 0)
            assert spec.out_channels % (vectors * width) == 0
            pixels = spec.out[-1] * (spec.out[-2] if len(spec.out) > 1 else 1)
            assert cols <= pixels if rows == 1 else spec.out[-1] % cols == 0 and spec.out[-2] % rows == 0
            assert vectors * rows * cols + vectors + 1 <= registers(target.vector_lanes)
        elif c.tile:
            vectors, rows, cols = c.tile
            assert spec.out_channels % (vectors * target.vector_lanes) == 0
            assert spec.out[-1] % cols == 0 and (len(spec.out) == 1 or spec.out[-2] % rows == 0)
            assert vectors * rows * cols + vectors + SPARE_REGISTERS <= registers(target.vector_lanes)


def test_a_resnet_layer_on_avx2():
    found = {str(c) for c in candidates(spec_of(c=64, o=64, size=(56, 56)), AVX2)}
    assert {"direct/NCHW", "direct/NHWC", "direct/NCHW8c", "im2col_gemm/NCHW", "winograd_f2x3/NCHW",
            "winograd_f4x3/NCHW", "winograd_f2x3/NCHW8c", "winograd_f4x3/NCHW8c", "fft/NCHW"} <= found
    assert not any(s.startswith("winograd") and "NHWC" in s for s in found)
    assert any(s.startswith("winograd_f4x3/NCHW8c/t") for s in found), "GEMM tiles for blocked Winograd"
    assert not any(s.startswith(("gemm_1x1", "depthwise")) for s in found)
    assert not any(s.startswith(("winograd", "fft", "im2col")) and "NCHW/" in s for s in found), "tiles on NCHW-only"
    assert any(s.startswith("direct/NCHW8c/t") for s in found)


def test_block_is_the_largest_power_of_two_dividing_both_channel_counts():
    assert channel_block((24, 48), 8) == 8
    assert channel_block((24, 12), 8) == 4
    assert channel_block((64, 64), 16) == 16
    assert channel_block((3, 64), 8) is None
    depthwise = spec_of(c=24, o=24, group=24)
    assert nchwc(8) in {c.layout for c in candidates(depthwise, AVX2)}


def test_grouped_convs_stay_nchw():
    grouped = spec_of(c=64, o=64, group=2)
    assert {c.layout for c in candidates(grouped, AVX2)} == {None}


@pytest.mark.parametrize("text", ["winograd_f4x3/NCHW", "direct/NCHW8c/t1x2x4", "gemm_1x1/NHWC", "depthwise/NCHW16c",
                                  "direct/NCHW/t2x1x4"])
def test_text_form_round_trips(text):
    assert str(Candidate.parse(text)) == text
    assert Candidate.parse(text) == Candidate.parse(text) and hash(Candidate.parse(text)) == hash(Candidate.parse(text))


def test_nchw_is_one_candidate_however_spelled():
    from cnncompile.ir.types import NCHW

    assert Candidate(ConvAlgorithm.DIRECT, NCHW) == Candidate(ConvAlgorithm.DIRECT, None)
    assert Candidate.parse("direct") == Candidate(ConvAlgorithm.DIRECT)


@pytest.mark.parametrize("text", ["winograd/NCHW", "direct/NCWH", "direct/NCHW8c/2x2", "direct/NCHW0c"])
def test_bad_text_is_an_error_that_says_what_is_expected(text):
    with pytest.raises(CnnCompileError):
        Candidate.parse(text)


def test_apply_candidate_sets_algorithm_layout_and_tile():
    attrs = apply_candidate(FusedConvAttrs(), Candidate(ConvAlgorithm.GEMM_1X1, NHWC, (1, 2, 4)))
    assert (attrs.algorithm, attrs.layout, attrs.tile) == (ConvAlgorithm.GEMM_1X1, NHWC, (1, 2, 4))
