"""Every conv algorithm's TVM kernel (NCHW) matches the float64 direct reference, and is its own kernel.

Property tests draw conv workloads each algorithm applies to (ranks, groups, strides,
dilations, asymmetric pads, epilogues) with fresh He-initialised weights; the oracle is
the reference interpreter running the same graph with algorithm `direct` in float64.
Each TVM build takes seconds, so the default run draws a few examples per algorithm and
the broader sweep is marked slow.
"""

import dataclasses
import shutil

import numpy as np
import pytest
import tvm
from tvm import te
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tvm.support import nvcc

import cnncompile
from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec, why_not
from cnncompile.backends.tvm.lowering import lower_node
from cnncompile.backends.tvm.module import lower_graph
from cnncompile.backends.tvm.schedule.cuda import GPU_LIMITS, RULE_ATTR, lowered_for_check
from cnncompile.backends.tvm.target import parse_target
from cnncompile.errors import CnnCompileError
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType, TensorType
from cnncompile.numerics import relative_error, tolerance
from cnncompile.ops import REGISTRY
from cnncompile.ops.fused import Activation
from cnncompile.ops.registry import NoAttrs

# Each algorithm is held to the policy's float32 bound for it. The FFT's DFT tables are
# rounded to float32 once and each output sums O(L) products per axis with magnitudes <= 1:
# observed ~1e-6, well inside the policy's 1e-4, which still catches any wrong sign or index.
LLVM = parse_target("llvm")
# Hand-picked register tiles are sized for 8 float32 lanes; every x86-64 CPU with AVX2 runs this target.
AVX2 = "llvm:haswell"
CUDA = parse_target("cuda")


@dataclasses.dataclass(frozen=True)
class Workload:
    x: tuple[int, ...]
    w: tuple[int, ...]
    conv: dict
    residual: bool
    relu: bool


def build(workload: Workload, algorithm: ConvAlgorithm, seed: int = 0, constant_weights: bool = True):
    """A one-node FusedConv graph and its feeds: X (and the residual) as inputs, W and B constants."""
    rng = np.random.default_rng(seed)
    graph = Graph(f"conv_{algorithm.value}")
    feeds = {"x": rng.standard_normal(workload.x).astype(np.float32)}
    x = graph.add_input("x", TensorType(workload.x))
    weights = (rng.standard_normal(workload.w) * np.sqrt(2.0 / np.prod(workload.w[1:]))).astype(np.float32)
    if constant_weights:
        w = graph.add_constant(weights, "w")
    else:
        w = graph.add_input("w", TensorType(workload.w))
        feeds["w"] = weights
    inputs = [x, w, graph.add_constant(rng.standard_normal(workload.w[0]).astype(np.float32), "b")]
    if workload.residual:
        spec = ConvSpec.of(TensorType(workload.x), TensorType(workload.w), **workload.conv)
        out = (spec.batch, spec.out_channels, *spec.out)
        inputs.append(graph.add_input("z", TensorType(out)))
        feeds["z"] = rng.standard_normal(out).astype(np.float32)
    activation = Activation.RELU if workload.relu else Activation.NONE
    (y,) = graph.add_node(REGISTRY["FusedConv"], inputs, activation=activation, activation_attrs=NoAttrs(),
                          algorithm=algorithm, **workload.conv)
    graph.mark_outputs(y)
    return graph, feeds


def check_matches_direct(workload: Workload, algorithm: ConvAlgorithm, seed: int = 0) -> None:
    graph, feeds = build(workload, algorithm, seed)
    got = cnncompile.compile(graph, target="llvm", pipeline="O0").run(feeds)
    oracle, _ = build(workload, ConvAlgorithm.DIRECT, seed)
    want = cnncompile.run_reference(oracle, feeds, dtype=DType.FLOAT64)
    (name,) = want
    error = relative_error(got[graph.outputs[0].name], want[name])
    assert error <= tolerance(DType.FLOAT32, algorithm), f"{algorithm.value} {workload}: error {error:.3g}"


@st.composite
def workloads(draw, algorithm: ConvAlgorithm, rank: int | None = None) -> Workload:
    """A small conv `algorithm` applies to."""
    winograd = algorithm in (ConvAlgorithm.WINOGRAD_F2X3, ConvAlgorithm.WINOGRAD_F4X3)
    rank = rank or (2 if winograd else draw(st.sampled_from([1, 2, 2, 3])))
    if algorithm is ConvAlgorithm.DEPTHWISE:
        channels = draw(st.integers(1, 6))
        group, out_channels = channels, channels * draw(st.integers(1, 2))
    elif winograd:
        channels, group, out_channels = draw(st.integers(1, 6)), 1, draw(st.integers(1, 6))
    else:
        group = draw(st.sampled_from([1, 1, 2, 3]))
        channels, out_channels = group * draw(st.integers(1, 3)), group * draw(st.integers(1, 4))
    unit = algorithm in (ConvAlgorithm.FFT, ConvAlgorithm.GEMM_1X1) or winograd
    if algorithm is ConvAlgorithm.GEMM_1X1:
        kernel = (1,) * rank
    elif winograd:
        kernel = (3, 3)
    else:
        kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    strides = (1,) * rank if unit else tuple(draw(st.integers(1, 2)) for _ in range(rank))
    dilations = (1,) * rank if unit else tuple(draw(st.integers(1, 2)) for _ in range(rank))
    no_pads = algorithm is ConvAlgorithm.GEMM_1X1
    pads = (0,) * (2 * rank) if no_pads else tuple(draw(st.integers(0, 2)) for _ in range(2 * rank))
    # outputs drawn first, inputs sized to produce them: enough outputs per channel (>= 8 when
    # possible) that the largest reference value is O(1), which the relative error divides by
    low, high = {1: (8, 12), 2: (3, 8), 3: (2, 4)}[rank]
    outs = [draw(st.integers(low, high)) for _ in range(rank)]
    spatial = tuple(max((o - 1) * s + (k - 1) * d + 1 - pb - pe, 1)
                    for o, s, k, d, pb, pe in zip(outs, strides, kernel, dilations, pads[:rank], pads[rank:]))
    conv = dict(group=group, strides=strides, dilations=dilations, pads=pads)
    workload = Workload((draw(st.integers(1, 2)), channels, *spatial), (out_channels, channels // group, *kernel),
                        conv, draw(st.booleans()), draw(st.booleans()))
    assert why_not(algorithm, ConvSpec.of(TensorType(workload.x), TensorType(workload.w), **conv)) is None
    return workload


QUICK = settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
BROAD = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("algorithm", list(ConvAlgorithm), ids=lambda a: a.value)
@given(data=st.data())
@QUICK
def test_algorithm_matches_direct_reference(algorithm, data):
    check_matches_direct(data.draw(workloads(algorithm)), algorithm)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(ConvAlgorithm), ids=lambda a: a.value)
@given(data=st.data())
@BROAD
def test_algorithm_matches_direct_reference_broadly(algorithm, data):
    check_matches_direct(data.draw(workloads(algorithm)), algorithm, seed=data.draw(st.integers(0, 99)))


SQUARE = Workload((1, 8, 12, 12), (16, 8, 3, 3), dict(pads=(1, 1, 1, 1)), residual=True, relu=True)


def stages(graph: Graph) -> dict[str, te.Tensor]:
    """The TE stages of the graph's one node as the CPU lowering builds them, by name."""
    (node,) = graph.nodes
    _, kernel = lower_node(node, tuple(graph.is_constant(v) for v in node.inputs), LLVM)
    found, pending = {}, list(kernel.outputs)
    while pending:
        tensor = pending.pop()
        found[tensor.op.name] = tensor
        pending.extend(tensor.op.input_tensors)
    return found


def primfuncs(module: tvm.IRModule) -> list[tvm.tirx.PrimFunc]:
    return [f for _, f in module.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]


@pytest.mark.parametrize("algorithm, expected", [
    (ConvAlgorithm.DIRECT, {"conv"}),
    (ConvAlgorithm.IM2COL_GEMM, {"im2col", "gemm"}),
    (ConvAlgorithm.WINOGRAD_F2X3, {"winograd_input", "gemm", "winograd_output"}),
    (ConvAlgorithm.WINOGRAD_F4X3, {"winograd_input", "gemm", "winograd_output"}),
    (ConvAlgorithm.FFT, {"dft0", "dft1", "spectrum", "idft0", "idft1"}),
], ids=lambda v: v.value if isinstance(v, ConvAlgorithm) else "")
def test_the_algorithm_decides_the_kernel_stages(algorithm, expected):
    names = set(stages(build(SQUARE, algorithm)[0]))
    assert expected <= names
    assert not ({"conv", "im2col", "gemm", "winograd_input", "spectrum"} - expected) & names


def test_gemm_1x1_is_one_gemm_without_unrolling_and_depthwise_has_no_channel_reduction():
    pointwise = Workload((1, 16, 7, 7), (24, 16, 1, 1), dict(), residual=False, relu=False)
    names = set(stages(build(pointwise, ConvAlgorithm.GEMM_1X1)[0]))
    assert "gemm" in names and "im2col" not in names and "conv" not in names
    depthwise = Workload((1, 8, 10, 10), (8, 1, 3, 3), dict(group=8, pads=(1, 1, 1, 1)), residual=False, relu=False)

    def reduction_extents(algorithm):
        conv = stages(build(depthwise, algorithm)[0])["conv"]
        return [int(axis.dom.extent) for axis in conv.op.reduce_axis]

    assert reduction_extents(ConvAlgorithm.DEPTHWISE) == [3, 3]
    # one direct compute: on a depthwise workload it has no loop over the group's one channel either
    assert reduction_extents(ConvAlgorithm.DIRECT) == [3, 3]


def test_a_tuned_tile_is_honoured_and_a_wrong_one_names_the_node():
    blocked = Workload((1, 8, 12, 12), (16, 8, 3, 3), dict(pads=(1, 1, 1, 1)), residual=False, relu=True)
    graph, feeds = build(blocked, ConvAlgorithm.DIRECT)
    (node,) = graph.nodes
    node.attrs = dataclasses.replace(node.attrs, tile=(2, 2, 3))
    model = cnncompile.compile(graph, target=AVX2, pipeline="O0")
    want = cnncompile.run_reference(build(blocked, ConvAlgorithm.DIRECT)[0], feeds, dtype=DType.FLOAT64)
    got = model.run(feeds)[graph.outputs[0].name]
    assert relative_error(got, next(iter(want.values()))) <= tolerance(DType.FLOAT32)
    node.attrs = dataclasses.replace(node.attrs, tile=(1, 5, 1))
    with pytest.raises(CnnCompileError, match=f"{node.name}.*5 rows do not divide 12"):
        cnncompile.compile(graph, target=AVX2, pipeline="O0")


@pytest.mark.parametrize("workload, algorithm, tile", [
    (Workload((1, 16, 8, 8), (24, 16, 1, 1), dict(), False, False), ConvAlgorithm.GEMM_1X1, (2, 1, 4)),
    (SQUARE, ConvAlgorithm.IM2COL_GEMM, (2, 1, 4)),
    (SQUARE, ConvAlgorithm.WINOGRAD_F2X3, (1, 1, 8)),
], ids=["gemm_1x1", "im2col_gemm", "winograd_f2x3"])
def test_gemm_kernels_honour_a_tile_of_column_vectors(workload, algorithm, tile):
    graph, feeds = build(workload, algorithm)
    (node,) = graph.nodes
    node.attrs = dataclasses.replace(node.attrs, tile=tile)
    got = cnncompile.compile(graph, target=AVX2, pipeline="O0").run(feeds)
    want = cnncompile.run_reference(build(workload, ConvAlgorithm.DIRECT)[0], feeds, dtype=DType.FLOAT64)
    error = relative_error(got[graph.outputs[0].name], next(iter(want.values())))
    assert error <= tolerance(DType.FLOAT32, algorithm)


def test_a_tile_for_a_kernel_without_one_is_an_error():
    graph, _ = build(SQUARE, ConvAlgorithm.FFT)
    (node,) = graph.nodes
    node.attrs = dataclasses.replace(node.attrs, tile=(1, 1, 1))
    with pytest.raises(CnnCompileError, match="fft kernels take no tuned register tile"):
        lower_graph(graph, LLVM)


@pytest.mark.parametrize("algorithm", [ConvAlgorithm.WINOGRAD_F2X3, ConvAlgorithm.FFT], ids=lambda a: a.value)
def test_build_time_weight_transforms_need_constant_weights(algorithm):
    graph, _ = build(SQUARE, algorithm, constant_weights=False)
    with pytest.raises(CnnCompileError, match="must be a graph constant"):
        lower_graph(graph, LLVM)


def test_im2col_and_gemm_1x1_read_weights_given_at_run_time():
    for workload, algorithm in ((SQUARE, ConvAlgorithm.IM2COL_GEMM),
                                (Workload((1, 6, 5, 5), (4, 3, 1, 1), dict(group=2), False, False),
                                 ConvAlgorithm.GEMM_1X1)):
        graph, feeds = build(workload, algorithm, constant_weights=False)
        got = cnncompile.compile(graph, target="llvm", pipeline="O0").run(feeds)
        want = cnncompile.run_reference(build(workload, ConvAlgorithm.DIRECT, constant_weights=False)[0], feeds,
                                        dtype=DType.FLOAT64)
        assert relative_error(got[graph.outputs[0].name], next(iter(want.values()))) <= tolerance(DType.FLOAT32)


CUDA_CASES = {
    ConvAlgorithm.DIRECT: (SQUARE, "Matmul"),
    ConvAlgorithm.DEPTHWISE: (Workload((1, 8, 12, 12), (16, 1, 3, 3), dict(group=8, pads=(1, 1, 1, 1)), True, True),
                              "GeneralReduction"),
    ConvAlgorithm.GEMM_1X1: (Workload((1, 16, 7, 7), (24, 8, 1, 1), dict(group=2), True, True), "Matmul"),
    ConvAlgorithm.IM2COL_GEMM: (SQUARE, "Matmul"),
    # several reductions in one kernel: dlight's Matmul takes one, so these bind threads with Fallback
    ConvAlgorithm.WINOGRAD_F2X3: (SQUARE, "Fallback"),
    ConvAlgorithm.WINOGRAD_F4X3: (SQUARE, "Fallback"),
    ConvAlgorithm.FFT: (SQUARE, "Fallback"),
}


@pytest.mark.parametrize("algorithm", list(CUDA_CASES), ids=lambda a: a.value)
def test_cuda_kernel_is_scheduled_and_fits_the_device(algorithm):
    workload, rule = CUDA_CASES[algorithm]
    (func,) = primfuncs(lower_graph(build(workload, algorithm)[0], CUDA).module)
    assert func.attrs[RULE_ATTR] == rule
    assert tvm.s_tir.analysis.verify_well_formed(func)
    assert tvm.s_tir.analysis.verify_gpu_code(lowered_for_check(func, CUDA.to_tvm()), GPU_LIMITS)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_every_algorithm_compiles_with_nvcc(arch):
    target = parse_target(f"cuda:{arch}")
    kernels = {}
    for algorithm, (workload, _) in CUDA_CASES.items():
        (func,) = primfuncs(lower_graph(build(workload, algorithm)[0], target).module)
        kernels[algorithm.value] = func.with_attr("global_symbol", algorithm.value)
    library = tvm.compile(tvm.IRModule(kernels), target=target.to_tvm())
    (device,) = [m for m in library.mod.imports if m.kind == "cuda"]
    source = device.inspect_source()
    assert all(f"{name}_kernel" in source for name in kernels)
    with target.to_tvm():
        assert len(nvcc.compile_cuda(source, target_format="fatbin", arch=arch, compiler="nvcc")) > 0


@pytest.mark.gpu
@pytest.mark.parametrize("algorithm", list(CUDA_CASES), ids=lambda a: a.value)
def test_algorithm_matches_reference_on_gpu(algorithm):
    workload, _ = CUDA_CASES[algorithm]
    graph, feeds = build(workload, algorithm, seed=3)
    got = cnncompile.compile(graph, target="cuda", pipeline="O0").run(feeds)
    want = cnncompile.run_reference(build(workload, ConvAlgorithm.DIRECT, seed=3)[0], feeds, dtype=DType.FLOAT64)
    error = relative_error(got[graph.outputs[0].name], next(iter(want.values())))
    assert error <= tolerance(DType.FLOAT32, algorithm)
