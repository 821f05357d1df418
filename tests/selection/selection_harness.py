"""Targets and conv workloads shared by the selection tests."""

from __future__ import annotations

from hypothesis import strategies as st

from cnncompile.algorithms.applicability import ConvSpec
from cnncompile.backends.tvm.target import Device, TargetSpec
from cnncompile.ir.types import DType, TensorType

AVX2 = TargetSpec(Device.LLVM, "haswell")            # 8 float32 lanes
AVX512 = TargetSpec(Device.LLVM, "skylake-avx512")   # 16 lanes
CUDA = TargetSpec(Device.CUDA, "sm_80")


def spec_of(n=1, c=16, o=16, size=(12, 12), kernel=3, stride=1, dilation=1, pad=1, group=1) -> ConvSpec:
    rank = len(size)
    x = TensorType((n, c, *size), DType.FLOAT32)
    w = TensorType((o, c // group, *(kernel,) * rank), DType.FLOAT32)
    return ConvSpec.of(x, w, strides=(stride,) * rank, dilations=(dilation,) * rank, pads=(pad,) * (2 * rank),
                       group=group)


@st.composite
def conv_specs(draw) -> ConvSpec:
    group = draw(st.sampled_from([1, 1, 2, "depthwise"]))
    c = draw(st.sampled_from([1, 3, 4, 6, 8, 12, 16, 24, 32, 64]))
    if group == "depthwise":
        group, o = c, c
    else:
        c = c * group if group > 1 else c
        o = group * draw(st.sampled_from([1, 4, 8, 16, 24, 40]))
    rank = draw(st.sampled_from([2, 2, 2, 1]))
    kernel = draw(st.sampled_from([1, 3, 5]))
    stride, dilation = draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 1, 2]))
    size = tuple(draw(st.integers((kernel - 1) * dilation + 1, 20)) for _ in range(rank))
    pad = draw(st.sampled_from([0, kernel // 2]))
    return spec_of(draw(st.integers(1, 2)), c, o, size, kernel, stride, dilation, pad, group)
