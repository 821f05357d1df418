"""Models from a real exporter: torch.onnx.export -> load_onnx -> reference == PyTorch.

Each net of torch_nets.py is exported with a dynamic batch axis by both of torch 2.13's
exporters: the TorchScript one (`dynamo=False`) at opsets 13 and 17, and the
torch.export-based one (`dynamo=True`, the default since torch 2.9, which needs
onnxscript) at its default opset 18. Traced at batch 2, each is imported with the batch
bound to 3. PyTorch's float64 output (the module cast with `.double()`) is the oracle for
the reference in both compute dtypes. Both exporters fold each BatchNorm into its conv's
weights in float32, so even the float64 reference runs weights rounded differently from
the module's: float32 tolerance applies to both.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
import torch

import cnncompile
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error, tolerance
from torch_nets import NETS, build

EXPORTS = [
    pytest.param("torchscript", 13, id="torchscript13"),
    pytest.param("torchscript", 17, id="torchscript17"),
    pytest.param("dynamo", 18, id="dynamo18", marks=pytest.mark.slow),  # torch.export tracing: seconds a net
]
# Ops (and conv groupings) each net's import must contain, so that a silent rewrite by an
# exporter cannot hollow a test out.
EXPECTED_OPS = {
    "resnet18": {"Conv", "Relu", "MaxPool", "Add", "Gemm"},
    "mobilenetv2": {"Conv", "Clip", "Add", "Gemm"},
    "resnext_block": {"Conv", "Relu", "Add"},
    "unet_block": {"Conv", "ConvTranspose", "Resize", "Concat", "MaxPool", "Slice"},
    "conv1d_net": {"Conv", "LeakyRelu", "MaxPool", "AveragePool", "Gemm"},
}

RUN_BATCH = 3

torch.set_num_threads(1)


def export(net: torch.nn.Module, x: torch.Tensor, exporter: str, opset: int) -> onnx.ModelProto:
    """The ONNX model of `net` with a dynamic batch axis; the exporters' deprecation notices are silenced."""
    names = {"input_names": ["x"], "output_names": ["y"], "opset_version": opset}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        if exporter == "dynamo":
            program = torch.onnx.export(net, (x,), dynamo=True, dynamic_shapes={"x": {0: torch.export.Dim("N")}},
                                        verbose=False, **names)
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(net, (x,), buffer, dynamo=False, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, **names)
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize(("exporter", "opset"), EXPORTS)
@pytest.mark.parametrize("name", sorted(NETS))
def test_exported_net_matches_torch(name, exporter, opset):
    """Traced at batch 2, imported with the dynamic batch bound to 3: nothing may keep the traced size."""
    seed = sorted(NETS).index(name)
    net = build(name, seed)
    rng = np.random.default_rng(seed)
    traced, shape = NETS[name][1], (RUN_BATCH, *NETS[name][1][1:])
    model = export(net, torch.from_numpy(rng.standard_normal(traced).astype(np.float32)), exporter, opset)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {opset}
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param, "the batch axis is exported dynamic"

    graph = cnncompile.load_onnx(model, input_shapes={"x": shape})
    ops = {node.op.name for node in graph.nodes}
    assert EXPECTED_OPS[name] <= ops, f"missing {EXPECTED_OPS[name] - ops} in {sorted(ops)}"
    if name in ("mobilenetv2", "resnext_block", "conv1d_net"):
        assert any(node.op.name == "Conv" and node.attrs.group > 1 for node in graph.nodes)
    if name == "unet_block":
        assert {node.attrs.mode.value for node in graph.nodes if node.op.name == "Resize"} == {"nearest", "linear"}

    x = rng.standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        want = net.double()(torch.from_numpy(x).double()).numpy()
    for dtype in (DType.FLOAT64, DType.FLOAT32):
        got = cnncompile.run_reference(graph, {"x": x}, dtype=dtype)["y"]
        assert got.shape == want.shape
        assert relative_error(got, want) <= tolerance(DType.FLOAT32), dtype
