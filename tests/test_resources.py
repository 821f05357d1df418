"""Memory limits (issue 21): a model's run is estimated before anything is allocated, and one that
cannot fit (or whose tensors pass what the kernels index) ends in one message naming the estimate
and the flag, exit status 2; never a TVM check failure, a MemoryError or a swapping machine."""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import cnncompile
from cnncompile.cli import main
from cnncompile.errors import ResourceError
from cnncompile.frontends.load import load_model
from cnncompile.ir.types import DType
from cnncompile.ops.elementwise import Relu
from cnncompile.resources import MemoryLimit, available_memory, estimate_memory, format_bytes
from pass_harness import Net


def conv_relu(path, shape=(1, 3, 8, 8)) -> str:
    """x -> Conv(4x3x3x3, bias, pads 1) 'conv1' -> Relu 'relu1' -> y, float32."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_estimate_of_a_small_graph_by_hand(tmp_path):
    """x 768 B is live from the start; conv1 adds c (1024 B) and frees x; relu1 adds y (1024 B) while c
    is still read: the peak is c + y = 2048 B while relu1 runs. Weights: 432 + 16 B."""
    graph = load_model(conv_relu(tmp_path / "m.onnx"))
    estimate = estimate_memory(graph)
    assert (estimate.weights, estimate.activations, estimate.workspace, estimate.peak_node) == (448, 2048, 0, "relu1")
    in_float64 = estimate_memory(graph, compute=DType.FLOAT64)
    assert (in_float64.weights, in_float64.activations) == (896, 4096)
    # conv1's workspace of 5000 B comes on top of x + c = 1792 B, which beats relu1's 2048 B
    with_workspace = estimate_memory(graph, {"conv1": 5000})
    assert (with_workspace.activations, with_workspace.workspace, with_workspace.peak_node) == (1792, 5000, "conv1")
    assert with_workspace.total == 448 + 1792 + 5000


def test_sizes_are_exact_past_64_bits():
    """Relu after Relu on 2^62 float64 elements: two 2^65-byte values live at once, counted exactly."""
    net = Net((2 ** 20, 2 ** 20, 2 ** 22))
    net.graph.outputs.append(net.node(Relu, net.node(Relu, net.x)))
    assert estimate_memory(net.graph).activations == 2 * 8 * 2 ** 62


@pytest.mark.parametrize("text, expected", [("1024", 1024), ("16G", 16 << 30), ("16GiB", 16 << 30),
                                            ("1.5t", 3 << 39), ("512 MB", 512 << 20)])
def test_memory_limit_sizes(text, expected):
    assert MemoryLimit.parse(text).bytes == expected


def test_memory_limit_none_and_nonsense():
    assert MemoryLimit.parse("none").bytes is None
    with pytest.raises(ResourceError, match="--memory-limit '12Q' is not a size"):
        MemoryLimit.parse("12Q")


def test_format_bytes():
    assert [format_bytes(n) for n in (832, 1536, 1 << 20, 12 << 40)] == ["832 B", "1.5 KiB", "1 MiB", "12 TiB"]


def test_available_memory_is_what_the_kernel_reports():
    total = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    assert 0 < available_memory() <= total


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("command", [["compile", "-o", "out", "--target", "llvm"], ["run", "--random-inputs"]])
@pytest.mark.parametrize("shape, estimate", [((1, 3, 1_000_000, 1_000_000), "TiB"), ((1, 3, 40_000, 40_000), "GiB")])
def test_an_activation_past_the_memory_is_refused_before_allocating(command, shape, estimate, tmp_path, capsys,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = conv_relu(tmp_path / "big.onnx", shape)
    assert main([command[0], model, *command[1:], "--memory-limit", "8G"]) == 2
    message = one_line_error(capsys)
    assert "needs an estimated" in message and estimate in message and "--memory-limit" in message, message
    assert "more than the 8 GiB of --memory-limit 8G" in message
    assert not (tmp_path / "out").exists()


def test_dims_whose_product_passes_64_bits_are_one_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compile", conv_relu(tmp_path / "huge.onnx", (1, 3, 2 ** 40, 2 ** 40)), "-o", "out",
                 "--target", "llvm"]) == 2
    message = one_line_error(capsys)
    assert "graph input 'x'" in message and "bytes" in message and "no --memory-limit admits it" in message, message


def test_past_the_int32_indices_of_the_kernels_names_the_node(tmp_path):
    """With the memory limit lifted, a tensor of more than 2^31 - 1 elements is still refused, before TVM."""
    model = conv_relu(tmp_path / "wide.onnx", (1, 3, 40_000, 40_000))
    with pytest.raises(ResourceError, match=r"graph input 'x' has 4.8e\+09 elements \(1x3x40000x40000\), more than "
                                            r"the 2147483647 that compiled kernels index"):
        cnncompile.compile(model, target="llvm", pipeline="O0", memory_limit="none")


def test_a_model_that_fits_compiles_and_its_manifest_keeps_the_estimate(tmp_path, capsys):
    model = conv_relu(tmp_path / "m.onnx")
    compiled = cnncompile.compile(model, target="llvm", pipeline="O0", memory_limit="1M")
    assert compiled.memory == estimate_memory(compiled.graph)
    compiled.save(tmp_path / "artifact")
    assert cnncompile.load(tmp_path / "artifact").memory == compiled.memory
    # A machine with less memory than the estimate refuses the artifact before loading its library.
    assert main(["run", str(tmp_path / "artifact"), "--random-inputs", "--memory-limit", "1K"]) == 2
    message = one_line_error(capsys)
    assert "running artifact" in message and f"needs an estimated {format_bytes(compiled.memory.total)}" in message
    assert main(["run", str(tmp_path / "artifact"), "--random-inputs", "--memory-limit", "1M"]) == 0


def test_an_empty_tensor_is_refused_before_tvm_names_it(tmp_path):
    """TVM cannot build a loop nest over an extent of 0: one message, not a scheduling failure."""
    with pytest.raises(ResourceError, match=r"graph input 'x' has no elements \(0x3x8x8\): compiled kernels need "
                                            r"non-empty tensors"):
        cnncompile.compile(conv_relu(tmp_path / "empty.onnx", (0, 3, 8, 8)), target="llvm", pipeline="O0")
