"""The TIR pipeline of build.py: small per-iteration buffers of a CPU kernel stay on its stack, and
only a CPU kernel's.

TVM alone keeps a CPU buffer on the stack only under 1 KiB; a register tile of AVX-512
accumulators is larger, and fetching it from the workspace allocator kept it out of registers.
In a CUDA build the host allocates the buffers the kernels share, and a host stack address
handed to a kernel is illegal on the GPU: those must come from the device's workspace.
"""

import re

import numpy as np
import pytest
import tvm
from tvm import te
from tvm.s_tir import Schedule

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.backends.tvm.build import CPU_TIR_PIPELINE, MAX_STACK_BUFFER_BYTES, build_module, vm_pipeline
from cnncompile.backends.tvm.module import lower_graph
from cnncompile.backends.tvm.target import parse_target
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import TensorType
from cnncompile.ops import REGISTRY
from cnncompile.ops.fused import Activation
from cnncompile.ops.registry import NoAttrs

LLVM = parse_target("llvm")
CUDA = parse_target("cuda:sm_80")
ROWS = 6
# An array of numbers on the stack; TVM's own packed-call arguments are arrays of pointers or structs.
STACK_ARRAY = re.compile(r"%([\w.]+) = alloca \[\d+ x (?:float|double|half|bfloat|i\d+)\]")


def row_buffer_kernel(columns: int) -> tvm.IRModule:
    """C = A * 2 + 1 with A * 2 computed into a buffer of one row under the row loop."""
    a = te.placeholder((ROWS, columns), "float32", name="A")
    doubled = te.compute((ROWS, columns), lambda i, j: a[i, j] * 2.0, name="doubled")
    c = te.compute((ROWS, columns), lambda i, j: doubled[i, j] + 1.0, name="C")
    sch = Schedule(te.create_prim_func([a, c]))
    sch.compute_at(sch.get_sblock("doubled"), sch.get_loops(sch.get_sblock("C"))[0])
    return tvm.IRModule({"f": sch.mod["main"].with_attr("global_symbol", "f")})


def run_and_check(executable, columns: int) -> None:
    a = np.random.default_rng(0).standard_normal((ROWS, columns)).astype(np.float32)
    out = tvm.runtime.empty((ROWS, columns), "float32", tvm.cpu())
    executable["f"](tvm.runtime.tensor(a, tvm.cpu()), out)
    np.testing.assert_allclose(out.numpy(), a * 2 + 1, rtol=1e-6)


def llvm_ir(executable) -> str:
    return executable.mod.inspect_source("ll")


@pytest.mark.parametrize("columns, on_stack", [(512, True), (MAX_STACK_BUFFER_BYTES // 4, True),
                                               (MAX_STACK_BUFFER_BYTES // 4 + 16, False)])
def test_a_buffer_up_to_the_limit_is_on_the_stack_and_a_larger_one_from_the_workspace(columns, on_stack):
    executable = build_module(row_buffer_kernel(columns), LLVM)
    run_and_check(executable, columns)
    assert ("TVMBackendAllocWorkspace" not in llvm_ir(executable)) == on_stack


def test_tvm_alone_takes_a_2_kib_buffer_from_the_workspace():
    """What the added pass changes: without it, the same 2 KiB row buffer is allocated per row."""
    executable = tvm.compile(row_buffer_kernel(512), target=LLVM.to_tvm())
    run_and_check(executable, 512)
    assert "TVMBackendAllocWorkspace" in llvm_ir(executable)


def small_conv(algorithm: ConvAlgorithm) -> Graph:
    """A 4->8 3x3 conv with bias and ReLU on 8x8: the buffers between its stages (Winograd's transformed
    tiles, the FFT's spectra) are a few KiB, under the stack limit."""
    rng = np.random.default_rng(0)
    graph = Graph(f"small_{algorithm.value}")
    x = graph.add_input("x", TensorType((1, 4, 8, 8)))
    w = graph.add_constant((rng.standard_normal((8, 4, 3, 3)) * np.sqrt(2 / 36)).astype(np.float32), "w")
    b = graph.add_constant(rng.standard_normal(8).astype(np.float32), "b")
    (y,) = graph.add_node(REGISTRY["FusedConv"], [x, w, b], activation=Activation.RELU, activation_attrs=NoAttrs(),
                          algorithm=algorithm, pads=(1, 1, 1, 1))
    graph.mark_outputs(y)
    return graph


def host_llvm_ir(executable) -> str:
    """The LLVM IR of a CUDA build's host code: what allocates the buffers and launches the kernels."""
    def walk(module):
        yield module
        for imported in module.imports:
            yield from walk(imported)

    kinds = {m.kind: m for m in walk(executable.mod)}
    assert "cuda" in kinds, f"not a CUDA build: {sorted(kinds)}"
    return kinds["llvm"].inspect_source("ll")


def host_stack_arrays(executable) -> list[str]:
    return STACK_ARRAY.findall(host_llvm_ir(executable))


@pytest.mark.parametrize("algorithm", [ConvAlgorithm.WINOGRAD_F2X3, ConvAlgorithm.FFT], ids=lambda a: a.value)
def test_a_cuda_build_takes_small_device_buffers_from_the_workspace_not_the_host_stack(algorithm):
    executable = build_module(lower_graph(small_conv(algorithm), CUDA).module, CUDA)
    assert host_stack_arrays(executable) == []
    assert "TVMBackendAllocWorkspace" in host_llvm_ir(executable)


def test_the_stack_pipeline_on_a_cuda_build_would_put_device_buffers_on_the_host_stack():
    """The negative control: the check above finds Winograd's tiles on the host stack when the CPU pipeline runs."""
    module = lower_graph(small_conv(ConvAlgorithm.WINOGRAD_F2X3), CUDA).module
    executable = tvm.compile(module, target=CUDA.to_tvm(), relax_pipeline=vm_pipeline(), tir_pipeline=CPU_TIR_PIPELINE)
    assert host_stack_arrays(executable), "no device buffer on the host stack: the check above would see nothing"
