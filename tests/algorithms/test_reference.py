"""Every NumPy convolution algorithm against an independent oracle, over random conv parameters.

The oracle is the definition written out in this file, one output position at a time in
float64. Each algorithm gets a strategy drawing the workloads it applies to (random
channels, groups, sizes, kernels, strides, dilations and pads within its rules); float64
results must agree to rounding, float32 within DESIGN.md's tolerance for the algorithm.
A generic strategy checks that an algorithm either applies and agrees or raises
ShapeError naming itself. Finally each algorithm runs as a FusedConv through the
reference interpreter against onnxruntime's Conv with bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnncompile
from cnncompile import DType, Graph, TensorType
from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec, why_not
from cnncompile.algorithms.reference import convolve
from cnncompile.algorithms.windows import AutoPad
from cnncompile.errors import ShapeError
from cnncompile.numerics import relative_error, tolerance
from cnncompile.ops.fused import FusedConv, FusedConvAttrs
from onnx_harness import he_normal, run_ort, single_node_model

FLOAT64 = 1e-10
# float32 against the float64 oracle: the numerical policy, tolerance(DType.FLOAT32, algorithm)
# (observed for fft <= 4e-7 on ResNet-sized 3x3, 7x7 and 11x11 layers: numpy's pocketfft is
# accurate to a few ulps times log(size), well inside 1e-4).


@dataclass(frozen=True)
class Case:
    """A conv workload with explicit pads: X (n, c, *spatial), W (m, c/group, *kernel)."""

    n: int
    c: int
    m: int
    group: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[int, ...]

    @property
    def attrs(self) -> dict:
        return dict(group=self.group, strides=self.strides, dilations=self.dilations, pads=self.pads)

    def operands(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.n, self.c, *self.spatial))
        w = he_normal(rng, (self.m, self.c // self.group, *self.kernel)).astype(np.float64)
        return x, w


def loop_oracle(x: np.ndarray, w: np.ndarray, case: Case) -> np.ndarray:
    """y[n, m, o] = sum over the group's channels c and taps t of x_pad[n, c, o*s + t*d] w[m, c, t]."""
    rank = len(case.kernel)
    begin, end = case.pads[:rank], case.pads[rank:]
    xp = np.pad(x, [(0, 0), (0, 0), *zip(begin, end)])
    out = [(p - (k - 1) * d - 1) // s + 1
           for p, k, d, s in zip(xp.shape[2:], case.kernel, case.dilations, case.strides)]
    cg, mg = case.c // case.group, case.m // case.group
    y = np.zeros((case.n, case.m, *out))
    for o in np.ndindex(*out):
        taps = np.ix_(*(np.arange(k) * d + i * s for k, d, i, s in zip(case.kernel, case.dilations, o, case.strides)))
        for g in range(case.group):
            window = xp[:, g * cg:(g + 1) * cg][(slice(None), slice(None), *taps)]
            y[(slice(None), slice(g * mg, (g + 1) * mg), *o)] = np.tensordot(
                window, w[g * mg:(g + 1) * mg], axes=(range(1, 2 + rank), range(1, 2 + rank)))
    return y


@st.composite
def cases(draw, *, rank=(1, 2, 3), kernel=None, unit_strides=False, unit_dilations=False, pads=True,
          group=None, depthwise=False, max_size=9):
    """Random conv workloads; the keywords pin what an algorithm requires."""
    r = draw(st.sampled_from(rank))
    k = kernel or tuple(draw(st.integers(1, 4)) for _ in range(r))
    s = (1,) * r if unit_strides else tuple(draw(st.integers(1, 3)) for _ in range(r))
    d = (1,) * r if unit_dilations else tuple(draw(st.integers(1, 2)) for _ in range(r))
    p = tuple(draw(st.integers(0, 2)) for _ in range(2 * r)) if pads else (0,) * (2 * r)
    extent = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    limit = max_size if r < 3 else 5
    spatial = tuple(draw(st.integers(max(e - p[i] - p[r + i], 1), max(e - p[i] - p[r + i], 1) + limit))
                    for i, e in enumerate(extent))
    g = group if group is not None else draw(st.sampled_from([1, 1, 2, 3]))
    if depthwise:
        c = g = draw(st.integers(1, 6))
        m = c * draw(st.integers(1, 3))
    else:
        c, m = g * draw(st.integers(1, 4)), g * draw(st.integers(1, 4))
    return Case(draw(st.integers(1, 2)), c, m, g, spatial, k, s, d, p)


STRATEGIES = {
    ConvAlgorithm.DIRECT: cases(),
    ConvAlgorithm.IM2COL_GEMM: cases(),
    ConvAlgorithm.GEMM_1X1: st.integers(1, 3).flatmap(
        lambda r: cases(rank=(r,), kernel=(1,) * r, unit_strides=True, pads=False)),
    ConvAlgorithm.WINOGRAD_F2X3: cases(rank=(2,), kernel=(3, 3), unit_strides=True, unit_dilations=True, group=1,
                                       max_size=12),
    ConvAlgorithm.WINOGRAD_F4X3: cases(rank=(2,), kernel=(3, 3), unit_strides=True, unit_dilations=True, group=1,
                                       max_size=12),
    ConvAlgorithm.DEPTHWISE: cases(depthwise=True),
    ConvAlgorithm.FFT: cases(unit_strides=True, unit_dilations=True),
}


def check_against_oracle(algorithm: ConvAlgorithm, case: Case, seed: int) -> None:
    x, w = case.operands(seed)
    want = loop_oracle(x, w, case)
    got = convolve(algorithm, x, w, **case.attrs)
    assert got.dtype == np.float64 and got.shape == want.shape
    assert relative_error(got, want) <= FLOAT64, f"{algorithm.value} float64 on {case}"
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    got32 = convolve(algorithm, x32, w32, **case.attrs)
    want32 = loop_oracle(x32.astype(np.float64), w32.astype(np.float64), case)
    assert got32.dtype == np.float32
    assert relative_error(got32, want32) <= tolerance(DType.FLOAT32, algorithm), f"{algorithm.value} float32 on {case}"


@pytest.mark.parametrize("algorithm", list(ConvAlgorithm), ids=lambda a: a.value)
@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_algorithm_matches_the_definition(algorithm, data, seed):
    check_against_oracle(algorithm, data.draw(STRATEGIES[algorithm]), seed)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(case=st.one_of(cases(), cases(unit_strides=True, unit_dilations=True, group=1, rank=(2,))),
       seed=st.integers(0, 2**32 - 1))
def test_each_algorithm_agrees_where_it_applies_and_refuses_elsewhere(case, seed):
    x, w = case.operands(seed)
    spec = ConvSpec.of(TensorType.of(x), TensorType.of(w), **case.attrs)
    want = loop_oracle(x, w, case)
    for algorithm in ConvAlgorithm:
        if why_not(algorithm, spec) is None:
            assert relative_error(convolve(algorithm, x, w, **case.attrs), want) <= FLOAT64, algorithm.value
        else:
            with pytest.raises(ShapeError, match=f"^{algorithm.value} does not apply"):
                convolve(algorithm, x, w, **case.attrs)


# Wide layers, where float32 rounding accumulates over hundreds of terms per output.
WIDE = [
    Case(1, 64, 64, 1, (18, 17), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    Case(1, 96, 96, 96, (18, 18), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    Case(2, 128, 64, 1, (9, 9), (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
    Case(1, 16, 16, 1, (24, 24), (7, 7), (1, 1), (1, 1), (3, 3, 3, 3)),
]


@pytest.mark.parametrize("case", WIDE, ids=lambda c: f"{c.c}x{'x'.join(map(str, c.spatial))}k{c.kernel[0]}g{c.group}")
def test_float32_error_on_wide_layers(case):
    spec = ConvSpec.of(TensorType((case.n, case.c, *case.spatial)), TensorType((case.m, case.c // case.group,
                                                                               *case.kernel)), **case.attrs)
    for algorithm in ConvAlgorithm:
        if why_not(algorithm, spec) is None:
            check_against_oracle(algorithm, case, seed=7)


@pytest.mark.parametrize("algorithm, x_shape, w_shape, attrs, reason", [
    (ConvAlgorithm.GEMM_1X1, (1, 4, 5, 5), (4, 4, 1, 1), dict(pads=(1, 1, 1, 1)), "no padding"),
    (ConvAlgorithm.GEMM_1X1, (1, 4, 5, 5), (4, 4, 3, 3), {}, "1x1 kernel"),
    (ConvAlgorithm.WINOGRAD_F2X3, (1, 4, 5, 5), (4, 4, 5, 5), {}, "3x3 kernels"),
    (ConvAlgorithm.WINOGRAD_F4X3, (1, 4, 9), (4, 4, 3), {}, "2-D 3x3"),
    (ConvAlgorithm.WINOGRAD_F4X3, (1, 4, 5, 5), (4, 4, 3, 3), dict(strides=(2, 2)), "stride 1"),
    (ConvAlgorithm.WINOGRAD_F2X3, (1, 4, 5, 5), (4, 2, 3, 3), dict(group=2), "ungrouped"),
    (ConvAlgorithm.DEPTHWISE, (1, 4, 5, 5), (4, 2, 3, 3), dict(group=2), "one input channel per group"),
    (ConvAlgorithm.FFT, (1, 4, 9, 9), (4, 4, 3, 3), dict(dilations=(2, 1)), "dilation 1"),
    (ConvAlgorithm.DIRECT, (1, 4, 5, 5), (4, 3, 3, 3), {}, "do not form a conv"),
    (ConvAlgorithm.FFT, (1, 4, 5, 5), (4, 4, 3), {}, "do not form a conv"),
])
def test_inapplicable_algorithm_raises_with_the_reason(algorithm, x_shape, w_shape, attrs, reason):
    with pytest.raises(ShapeError, match=f"{algorithm.value}.*{reason}"):
        convolve(algorithm, np.ones(x_shape, np.float32), np.ones(w_shape, np.float32), **attrs)


@pytest.mark.parametrize("auto_pad, kernel, pads, algorithms", [
    (AutoPad.SAME_LOWER, (3, 4), (1, 2, 1, 1), (ConvAlgorithm.DIRECT, ConvAlgorithm.IM2COL_GEMM, ConvAlgorithm.FFT)),
    (AutoPad.SAME_UPPER, (3, 3), (1, 1, 1, 1), (ConvAlgorithm.WINOGRAD_F2X3, ConvAlgorithm.WINOGRAD_F4X3)),
])
def test_auto_pad_is_resolved_like_conv(auto_pad, kernel, pads, algorithms):
    """SAME_LOWER puts the odd unit of padding at the beginning; every algorithm follows Conv's rule."""
    case = Case(1, 3, 4, 1, (7, 6), kernel, (1, 1), (1, 1), pads)
    x, w = case.operands(3)
    want = loop_oracle(x, w, case)
    for algorithm in algorithms:
        assert relative_error(convolve(algorithm, x, w, auto_pad=auto_pad), want) <= FLOAT64, algorithm.value


# One workload per algorithm (and one that several share), run as a FusedConv graph.
INTERPRETER_CASES = [
    ((2, 4, 9, 11), (6, 2, 3, 2), dict(group=2, strides=(2, 1), pads=(1, 0, 2, 1), dilations=(1, 2))),
    ((1, 16, 6, 7), (8, 16, 1, 1), {}),
    ((1, 5, 10, 9), (6, 5, 3, 3), dict(pads=(1, 0, 2, 1))),
    ((2, 6, 8, 8), (12, 1, 3, 3), dict(group=6, pads=(1, 1, 1, 1), strides=(2, 2))),
    ((1, 4, 12, 10), (4, 2, 5, 5), dict(group=2, pads=(2, 2, 2, 2))),
    ((1, 3, 6, 5, 7), (4, 3, 3, 2, 3), dict(pads=(1, 0, 1, 1, 1, 0))),
]


@pytest.mark.parametrize("x_shape, w_shape, attrs", INTERPRETER_CASES)
def test_fused_conv_graph_matches_onnxruntime(x_shape, w_shape, attrs):
    rng = np.random.default_rng(len(x_shape) + w_shape[0])
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = he_normal(rng, w_shape)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    (want,) = run_ort(single_node_model("Conv", {"x": x}, {"w": w, "b": b}, attrs), {"x": x})
    spec = ConvSpec.of(TensorType.of(x), TensorType.of(w), **attrs)
    algorithms = [a for a in ConvAlgorithm if why_not(a, spec) is None]
    assert len(algorithms) >= 2
    for algorithm in algorithms:
        g = Graph("conv")
        inputs = [g.add_input("x", TensorType(x_shape)), g.add_constant(w, "w"), g.add_constant(b, "b")]
        g.mark_outputs(*g.add_node(FusedConv, inputs, FusedConvAttrs(**attrs, algorithm=algorithm)))
        cnncompile.verify(g)
        for dtype in (DType.FLOAT64, DType.FLOAT32):
            (got,) = cnncompile.run_reference(g, {"x": x}, dtype=dtype).values()
            assert relative_error(got, want) <= tolerance(DType.FLOAT32, algorithm), \
                f"{algorithm.value} {dtype.value} on {x_shape} {w_shape} {attrs}"


def test_every_algorithm_is_exercised_by_the_interpreter_cases():
    covered = set()
    for x_shape, w_shape, attrs in INTERPRETER_CASES:
        spec = ConvSpec.of(TensorType(x_shape), TensorType(w_shape), **attrs)
        covered |= {a for a in ConvAlgorithm if why_not(a, spec) is None}
    assert covered == set(ConvAlgorithm)
