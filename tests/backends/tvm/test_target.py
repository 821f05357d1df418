"""Targets: parsing, the CUDA default arch, and host detection that never assumes a hidden ISA."""

import pytest

from cnncompile.backends.tvm import target as target_module
from cnncompile.backends.tvm.target import DEFAULT_CUDA_ARCH, Device, TargetSpec, parse_target
from cnncompile.errors import CnnCompileError


@pytest.mark.parametrize("text, device, arch", [
    ("cuda", Device.CUDA, DEFAULT_CUDA_ARCH),
    ("cuda:sm_90", Device.CUDA, "sm_90"),
    ("llvm:skylake-avx512", Device.LLVM, "skylake-avx512"),
])
def test_parse(text, device, arch):
    spec = parse_target(text)
    assert (spec.device, spec.arch) == (device, arch)
    assert TargetSpec.from_dict(spec.as_dict()) == spec


@pytest.mark.parametrize("text, message", [
    ("tpu", "unknown target 'tpu'"), ("cuda:80", "unknown CUDA arch"), ("llvm:no-such-cpu", "does not know the cpu"),
])
def test_bad_targets_say_what_to_use(text, message):
    with pytest.raises(CnnCompileError, match=message):
        parse_target(text)


def test_host_cpu_switches_off_vector_features_the_machine_hides(monkeypatch):
    monkeypatch.setattr(target_module.codegen, "llvm_get_system_cpu", lambda: "skylake-avx512")
    monkeypatch.setattr(target_module, "_host_flags", lambda: {"sse4_2", "avx", "avx2", "fma"})
    spec = target_module.host_cpu.__wrapped__()
    assert spec.arch == "skylake-avx512" and spec.features == ("-avx512f",)
    assert spec.vector_lanes == 8
    assert parse_target("llvm:skylake-avx512").vector_lanes == 16


def test_cuda_vectors_and_limits():
    spec = parse_target("cuda:sm_90")
    assert spec.is_gpu and spec.to_tvm().attrs["max_shared_memory_per_block"] == 48 * 1024
