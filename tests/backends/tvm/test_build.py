"""The TIR pipeline of build.py: small per-iteration buffers of a CPU kernel stay on its stack.

TVM alone keeps a CPU buffer on the stack only under 1 KiB; a register tile of AVX-512
accumulators is larger, and fetching it from the workspace allocator kept it out of registers.
"""

import numpy as np
import pytest
import tvm
from tvm import te
from tvm.s_tir import Schedule

from cnncompile.backends.tvm.build import MAX_STACK_BUFFER_BYTES, build_module
from cnncompile.backends.tvm.target import parse_target

LLVM = parse_target("llvm")
ROWS = 6


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
