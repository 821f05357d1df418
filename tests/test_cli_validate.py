"""`cnncompile validate` against peers, layer by layer, with saved outputs and every input source; bad input is
one line and exit 2."""

import json

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from cnncompile.cli import main
from cnncompile.compiled import CompiledModel
from test_cli import one_line_error

SHAPE = (1, 3, 8, 8)


def conv_bn_relu_model(path):
    """data -> Conv(c1) -> BN(b1) -> Relu(r1) -> Conv(c2) -> BN(b2) -> Relu(out): two fusions to keep."""
    rng = np.random.default_rng(0)
    tensors, nodes, source = [], [], "data"
    for i, (cin, cout) in enumerate([(3, 8), (8, 4)], start=1):
        w = rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2 / (9 * cin))
        bn = [rng.uniform(0.5, 1.5, cout), rng.standard_normal(cout) * 0.1, rng.standard_normal(cout) * 0.1,
              rng.uniform(0.5, 1.5, cout)]
        for name, array in zip((f"w{i}", f"s{i}", f"t{i}", f"m{i}", f"v{i}"), [w, *bn]):
            tensors.append(numpy_helper.from_array(array.astype(np.float32), name))
        relu = "out" if i == 2 else f"r{i}"
        nodes += [helper.make_node("Conv", [source, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"),
                  helper.make_node("BatchNormalization", [f"c{i}", f"s{i}", f"t{i}", f"m{i}", f"v{i}"], [f"b{i}"],
                                   name=f"bn{i}"),
                  helper.make_node("Relu", [f"b{i}"], [relu], name=f"relu{i}")]
        source = relu
    graph = helper.make_graph(nodes, "cbr", [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, None)], tensors)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(conv_bn_relu_model(tmp_path_factory.mktemp("m") / "cbr.onnx"))


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("peer", ["onnxruntime", "reference32", "openvino"])
def test_the_compiled_model_agrees_with_each_peer(model, peer, capsys):
    assert main(["validate", model, "--target", "llvm", "--vs", peer, "--count", "2", "--json"]) == 0
    report = _json(capsys)
    assert report["vs"] == peer and report["sets"] == 2
    assert report["passed"] and report["error"] <= 1e-5  # DESIGN.md's float32 bound, between two float32 runs


def test_per_layer_names_original_onnx_values_and_covers_every_conv(model, capsys):
    assert main(["validate", model, "--target", "llvm", "--per-layer", "--json"]) == 0
    layers = _json(capsys)["layers"]
    proto = onnx.load(model)
    values = {o for n in proto.graph.node for o in n.output} | {i.name for i in proto.graph.input}
    assert {layer["onnx_name"] for layer in layers} <= values
    assert {"r1", "out"} <= {layer["onnx_name"] for layer in layers}  # the fused convs stand for the Relus
    covered = {name for layer in layers for name in layer["covers"]}
    assert {"conv1", "bn1", "relu1", "conv2", "bn2", "relu2"} <= covered
    assert not any(layer["op"] == "BatchNormalization" for layer in layers)  # folded, not unfused
    for layer in layers:
        assert set(layer) >= {"onnx_name", "op", "max_abs", "max_rel", "cosine", "bound", "passed"}
        assert layer["passed"] and layer["cosine"] > 1 - 1e-9 and layer["max_abs"] <= 16 * layer["bound"]


def test_a_wrong_kernel_is_named_by_its_onnx_value(model, monkeypatch, capsys):
    """Test-only fault: the kernel computing r1 (conv1+bn1+relu1, fused) is 0.1% off."""
    run_node = CompiledModel.run_node

    def faulty(self, name, arrays):
        outputs = run_node(self, name, arrays)
        node = next(n for n in self.graph.nodes if n.name == name)
        return [o * 1.001 if v.origin == "r1" else o for o, v in zip(outputs, node.outputs)]

    monkeypatch.setattr(CompiledModel, "run_node", faulty)
    assert main(["validate", model, "--target", "llvm", "--per-layer", "--json"]) == 1
    report = _json(capsys)
    assert report["first_divergence"]["onnx_name"] == "r1"
    assert [layer["onnx_name"] for layer in report["layers"] if not layer["passed"]][0] == "r1"
    assert main(["validate", model, "--target", "llvm", "--per-layer"]) == 1
    text = capsys.readouterr().out
    assert "first divergence: ONNX value 'r1'" in text and "<-- first out of proportion" in text


def test_saved_outputs_round_trip_and_a_tampered_file_is_refused(model, tmp_path, capsys):
    saved = tmp_path / "run.npz"
    assert main(["validate", model, "--target", "llvm", "--count", "2", "--save-outputs", str(saved)]) == 0
    capsys.readouterr()
    assert main(["validate", model, "--target", "llvm", "--load-outputs", str(saved), "--json"]) == 0
    report = _json(capsys)
    assert report["sets"] == 2 and report["error"] == 0.0  # the same build on the same inputs, bit for bit
    with np.load(saved) as archive:
        arrays = dict(archive)
    arrays["output/out"] = arrays["output/out"] * 1.01
    np.savez(tmp_path / "tampered.npz", **arrays)
    assert main(["validate", model, "--target", "llvm", "--load-outputs", str(tmp_path / "tampered.npz")]) == 2
    assert "checksum" in one_line_error(capsys)


def test_images_folder_feeds_one_set_per_picture(model, tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    assert main(["validate", model, "--target", "llvm", "--images", str(tmp_path), "--resize", "8x8",
                 "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--pixel-max", "1", "--json"]) == 0
    assert _json(capsys)["sets"] == 3


def test_a_classifier_reports_top1_and_top5_agreement(capsys):
    assert main(["validate", "zoo:lenet5", "--target", "llvm", "--vs", "onnxruntime", "--count", "3", "--json"]) == 0
    assert _json(capsys)["agreement"] == {"top1": 1.0, "top5": 1.0, "rows": 3}


def test_a_saved_artifact_is_a_peer_and_one_of_other_shapes_is_refused(model, tmp_path, capsys):
    """An O0 build saved to a directory against the O3 build being validated: two float32 TVM builds of one
    model; an artifact compiled for another input shape is a one-line error naming both signatures."""
    assert main(["compile", model, "--target", "llvm", "-p", "O0", "-o", str(tmp_path / "o0")]) == 0
    capsys.readouterr()
    assert main(["validate", model, "--target", "llvm", "--vs", str(tmp_path / "o0"), "--json"]) == 0
    report = _json(capsys)
    assert report["vs"] == str(tmp_path / "o0") and report["passed"] and 0 < report["error"] <= 1e-5
    assert main(["compile", "zoo:lenet5", "--target", "llvm", "-o", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    assert main(["validate", model, "--target", "llvm", "--vs", str(tmp_path / "other")]) == 2
    assert "the artifact takes" in one_line_error(capsys)


@pytest.mark.parametrize("args, message", [
    (["--input", "data={bad_shape}"], "expects [1, 3, 8, 8]"),
    (["--input", "image={good}"], "gives input(s) 'image'"),
    (["--input", "data={tmp}/missing.npy"], "cannot read input 'data'"),
    (["--vs", "tensorrt"], "--vs 'tensorrt': choose"),
    (["--images", "{tmp}"], "holds no pictures"),
    (["--resize", "8x8"], "--resize applies to --images"),
    (["--load-outputs", "{tmp}/missing.npz"], "cannot read it"),
    (["--tolerance", "-1"], "give a positive bound"),
    (["--distribution", "cauchy"], "choose normal"),
    (["--blame", "--load-outputs", "{tmp}/run.npz"], "--blame and --determinism rebuild"),
])
def test_bad_input_is_one_line_and_exit_2(model, args, message, tmp_path, capsys):
    np.save(tmp_path / "shape.npy", np.zeros((1, 3, 4, 4), np.float32))
    np.save(tmp_path / "good.npy", np.zeros(SHAPE, np.float32))
    fill = {"bad_shape": tmp_path / "shape.npy", "good": tmp_path / "good.npy", "tmp": tmp_path}
    assert main(["validate", model, "--target", "llvm", *[a.format(**fill) for a in args]]) == 2
    assert message in one_line_error(capsys)


def test_blame_prints_a_keep_fp32_list_that_makes_a_bf16_build_pass(capsys):
    """bf16 lenet5 ends near 5e-3 from the float64 reference, float32 near 3e-7: 1e-3 fails the first only."""
    tight = ["validate", "zoo:lenet5", "--target", "llvm", "--precision", "bf16", "--tolerance", "1e-3"]
    assert main([*tight, "--blame", "--json"]) == 1
    found = _json(capsys)["blame"]
    assert found["first_failing_pass"]["last"] == "convert-precision"
    keep = found["keep_fp32"]
    assert keep["passed"] and keep["flag"].startswith("--keep-fp32 ")
    assert main([*tight, *keep["flag"].split(), "--json"]) == 0
    report = _json(capsys)
    assert report["passed"] and report["error"] <= 1e-3


def test_determinism_reports_each_check(capsys):
    assert main(["validate", "zoo:lenet5", "--target", "llvm", "--determinism", "--json"]) == 0
    checks = _json(capsys)["determinism"]["checks"]
    assert [c["check"] for c in checks] == ["artifacts", "runs", "batch_rows"] and all(c["passed"] for c in checks)
