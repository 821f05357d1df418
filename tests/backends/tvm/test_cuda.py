"""CUDA without a GPU: kernels are scheduled by dlight's rules, pass the device checks, and compile with nvcc.

Numerical GPU tests carry the `gpu` marker and are skipped where no GPU is visible.
"""

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tvm
from tvm.support import nvcc

import cnncompile
from cnncompile.backends.tvm.module import lower_graph
from cnncompile.backends.tvm.schedule.cuda import GPU_LIMITS, RULE_ATTR, lowered_for_check
from cnncompile.backends.tvm.target import parse_target
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error, tolerance
from cnncompile.frontends.load import load_model

from cases import CASES

BY_ID = {c.id: c for c in CASES}
# conv, gemm, pooling, elementwise and a reduction, with the rule each must get
KERNELS = {"Conv": "Matmul", "FusedConv-residual-relu": "Matmul", "Conv-depthwise": "GeneralReduction",
           "Gemm": "Matmul", "Gemm-fc": "GEMV", "MaxPool": "Fallback", "AveragePool": "GeneralReduction",
           "GlobalAveragePool": "Reduction", "Add-broadcast": "Fallback", "Softmax": "GeneralReduction"}
CUDA = parse_target("cuda")


def primfuncs(module: tvm.IRModule) -> list[tvm.tirx.PrimFunc]:
    return [f for _, f in module.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]


@pytest.mark.parametrize("case_id", sorted(KERNELS))
def test_kernel_is_scheduled_by_the_expected_rule_and_fits_the_device(case_id):
    graph, _ = BY_ID[case_id].build()
    (func,) = primfuncs(lower_graph(graph, CUDA).module)
    assert func.attrs[RULE_ATTR] == KERNELS[case_id]
    assert tvm.s_tir.analysis.verify_well_formed(func)
    assert tvm.s_tir.analysis.verify_gpu_code(lowered_for_check(func, CUDA.to_tvm()), GPU_LIMITS)


def test_every_op_schedules_for_cuda():
    for case in CASES:
        graph, _ = case.build()
        for func in primfuncs(lower_graph(graph, CUDA).module):
            assert func.attrs[RULE_ATTR], case.id


def cuda_source(executable) -> str:
    def walk(module):
        yield module
        for imported in module.imports:
            yield from walk(imported)

    (device,) = [m for m in walk(executable.mod) if m.kind == "cuda"]
    return device.inspect_source()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_generated_kernels_compile_with_nvcc(arch):
    """A conv with its epilogue, a GEMV, a pool and a broadcast add, built as one CUDA module and compiled to a fatbin."""
    target = parse_target(f"cuda:{arch}")
    kernels = {}
    for case_id in ("FusedConv-residual-relu", "Gemm-fc", "MaxPool", "Add-broadcast"):
        graph, _ = BY_ID[case_id].build()
        (func,) = primfuncs(lower_graph(graph, target).module)
        symbol = case_id.replace("-", "_").lower()
        kernels[symbol] = func.with_attr("global_symbol", symbol)
    library = tvm.compile(tvm.IRModule(kernels), target=target.to_tvm())
    source = cuda_source(library)
    assert all(f"{symbol}_kernel" in source for symbol in kernels)
    with target.to_tvm():
        fatbin = nvcc.compile_cuda(source, target_format="fatbin", arch=arch, compiler="nvcc")
    assert len(fatbin) > 0


def test_cuda_artifact_is_written_without_a_gpu(tmp_path):
    graph, _ = BY_ID["Conv"].build()
    model = cnncompile.compile(graph, target="cuda:sm_90", pipeline="O0")
    path = model.save(tmp_path / "conv-cuda")
    manifest = (path / "manifest.json").read_text()
    assert '"arch": "sm_90"' in manifest and (path / "model.so").stat().st_size > 0


@pytest.mark.gpu
@pytest.mark.parametrize("case_id", sorted(KERNELS))
def test_kernel_matches_reference_on_gpu(case_id):
    graph, feeds = BY_ID[case_id].build(seed=3)
    got = cnncompile.compile(graph, target="cuda", pipeline="O0").run(feeds)
    want = cnncompile.run_reference(graph, feeds)
    for name, ref in want.items():
        assert relative_error(got[name], ref) <= tolerance(DType.FLOAT32), case_id
    assert np.isfinite(got[graph.outputs[0].name]).all()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "densenet121"])
def test_zoo_model_compiles_for_cuda_and_every_kernel_compiles_with_nvcc(name, tmp_path):
    """The whole module's CUDA source in one nvcc call per arch (both at once: nvcc is a subprocess).

    64x64 inputs keep the layers' structure (every conv, pool and block of the full-size
    model) while the TVM build stays quick; the kernels sm_80 and sm_90 get are the same source.
    """
    graph = load_model(f"zoo:{name}", {"input": (1, 3, 64, 64)})
    model = cnncompile.compile(graph, target="cuda", pipeline="O3")
    path = model.save(tmp_path / name)
    assert {p.name for p in path.iterdir()} == {"model.so", "manifest.json", "model.onnx"}
    source = cuda_source(model.library)
    missing = sorted({k.symbol for k in model.kernels if f"{k.symbol}_kernel" not in source})
    assert not missing, f"kernels without CUDA code: {missing}"

    def fatbin(arch: str) -> bytes:
        with parse_target(f"cuda:{arch}").to_tvm():
            return nvcc.compile_cuda(source, target_format="fatbin", arch=arch, compiler="nvcc")

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert all(len(binary) > 0 for binary in pool.map(fatbin, ["sm_80", "sm_90"]))
