"""bf16 convs on AVX512_BF16 compute with `vdpbf16ps` (schedule/cpu_bf16_dot.py).

Structure is checked for any host (the builds are only compiled, for named CPUs): a bf16
ResNet block for a CPU with AVX512_BF16 plans its NCHWc convs as pair dot products and its
assembly holds the instruction; for an AVX-512 CPU without it, the same convs are FMAs and
the instruction is absent. Numbers are checked where the host runs the instruction: each
such conv of ResNet-18 against the emulating reference (operands rounded to bf16, float32
accumulation), and the model against float64 within the bf16 policy.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import cnncompile
from cnncompile.backends.reference import run_reference
from cnncompile.backends.tvm.plan import Dot, WeightForm
from cnncompile.backends.tvm.target import host_cpu
from cnncompile.frontends.load import load_model
from cnncompile.ir.types import DType
from cnncompile.numerics import DTYPE_TOLERANCE, relative_error
from cnncompile.tools.models import random_inputs

sys.path.insert(0, str(Path(__file__).parent))
from test_reduced_precision import assert_emulated  # noqa: E402

SHAPES = {"input": (1, 3, 32, 32)}
WITH_BF16 = "llvm:sapphirerapids"
WITHOUT_BF16 = "llvm:skylake-avx512"


def dots(model) -> Counter:
    return Counter(k.plan.dot for k in model.kernels if k.plan is not None)


def assembly(model) -> str:
    """The assembly of the build's LLVM module (the VM's bytecode module imports it)."""
    def walk(module):
        yield module
        for imported in module.imports:
            yield from walk(imported)

    root = model.library.mod if hasattr(model.library, "mod") else model.library
    (llvm,) = (m for m in walk(root) if m.kind == "llvm")
    return llvm.inspect_source("asm")


@pytest.fixture(scope="module")
def built():
    return {target: cnncompile.compile("zoo:resnet18", target, "O3", input_shapes=SHAPES, precision="bf16")
            for target in (WITH_BF16, WITHOUT_BF16)}


def test_a_cpu_with_avx512_bf16_computes_its_blocked_bf16_convs_with_vdpbf16ps(built):
    model = built[WITH_BF16]
    planned = dots(model)
    # every conv but the first (it reads the 3-channel image in NCHW, which has no pairs of channel blocks)
    assert planned[Dot.BF16_PAIRS] >= 15 and planned[Dot.FMA] >= 1
    assert all(k.plan.weights is WeightForm.NCHWC_PAIRS for k in model.kernels
               if k.plan is not None and k.plan.dot is Dot.BF16_PAIRS)
    assert "vdpbf16ps" in assembly(model)


def test_without_avx512_bf16_the_same_convs_are_fmas(built):
    model = built[WITHOUT_BF16]
    assert Dot.BF16_PAIRS not in dots(model)
    assert "vdpbf16ps" not in assembly(model)


needs_bf16_host = pytest.mark.skipif(not host_cpu().bf16_pairs, reason="the host CPU lacks AVX512_BF16")


@pytest.fixture(scope="module")
def on_host():
    return cnncompile.compile("zoo:resnet18", "llvm", "O3", input_shapes=SHAPES, precision="bf16")


@needs_bf16_host
def test_every_pair_dot_conv_is_its_emulation(on_host):
    model = on_host
    inputs = random_inputs(model.graph, 3)
    arrived: dict[str, list[np.ndarray]] = {}
    run_reference(model.graph, inputs, DType.FLOAT32, hook=lambda node, args: arrived.__setitem__(node.name, args))
    planned = {k.node: k.plan.dot for k in model.kernels if k.plan is not None}
    checked = 0
    for node in model.graph.nodes:
        if planned.get(node.name) is not Dot.BF16_PAIRS:
            continue
        args = [a.astype(v.type.dtype.numpy) if v.type.dtype.is_float else a
                for a, v in zip(arrived[node.name], node.inputs)]
        (want,) = node.op.run([a.astype(np.float32) for a in args], node.attrs)
        (got,) = model.run_node(node.name, args)
        out = node.outputs[0].type.dtype
        assert_emulated(got, want.astype(out.numpy), out, node.name)
        checked += 1
    assert checked >= 15


@needs_bf16_host
def test_resnet18_with_vdpbf16ps_is_within_the_bf16_policy(on_host):
    inputs = random_inputs(on_host.graph, 4)
    gold = run_reference(load_model("zoo:resnet18", SHAPES), inputs, DType.FLOAT64)["fc"]
    error = relative_error(on_host.run(inputs)["fc"], gold)
    assert 1e-4 < error <= DTYPE_TOLERANCE[DType.BFLOAT16]
