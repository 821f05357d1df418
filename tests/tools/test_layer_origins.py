"""Every value an O3 build computes stands for a value of the imported ONNX model (Value.origin), so
validate --per-layer names every layer by an ONNX name: issue 20's ResNet-50, MobileNetV2 and light
Inception-v1 (the zoo's googlenet), optimized as a compile for an AVX-512 CPU would (NCHW16c layouts,
fused epilogues, folded BN) and, for ResNet-50, in bf16 too (the precision pass's casts)."""

from __future__ import annotations

import pytest

from cnncompile.api import target_pipeline
from cnncompile.backends.tvm.target import parse_target
from cnncompile.frontends.load import load_model
from cnncompile.passes.manager import run_pipeline
from cnncompile.tools.layers import covered_nodes

TARGET = parse_target("llvm:skylake-avx512")
SHAPE = (1, 3, 64, 64)


@pytest.mark.parametrize("model, precision", [("resnet50", "fp32"), ("resnet50", "bf16"),
                                              ("mobilenet_v2", "fp32"), ("googlenet", "fp32")])
def test_every_optimized_value_stands_for_an_onnx_value_and_every_conv_is_covered(model, precision):
    original = load_model(f"zoo:{model}", {"input": SHAPE})
    names = {v.name: v for v in (*original.inputs, *(o for n in original.nodes for o in n.outputs))}
    optimized = run_pipeline(original.copy(), target_pipeline("O3", TARGET, precision=precision).steps()).graph
    values = [o for n in optimized.nodes for o in n.outputs]
    unmapped = [v.name for v in values if v.origin not in names or names[v.origin].type.shape != v.type.shape]
    assert not unmapped, f"{len(unmapped)} of {len(values)} optimized values stand for no ONNX value: {unmapped[:5]}"
    between = covered_nodes(original)
    covered = {name for node in optimized.nodes for out in node.outputs
               for name in between([v.origin for v in node.inputs], out.origin)}
    convs = {n.name for n in original.nodes if n.op.name == "Conv"}
    assert convs and convs <= covered, sorted(convs - covered)[:5]
