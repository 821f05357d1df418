"""What a model takes in: dynamic dims, unsupported ops, initializers as inputs, external data."""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from cnncompile.cli import main
from cnncompile.errors import ModelError, UnsupportedError
from cnncompile.numerics import relative_error
from onnx_harness import he_normal, run_ort


def conv_model(x_dims=(1, 3, 8, 8), extra_inputs=(), opset=17) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["data", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, x_dims), *extra_inputs]
    graph = helper.make_graph(
        nodes, "conv", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(he_normal(rng, (4, 3, 3, 3)), "w"),
         numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# -- dynamic dims -------------------------------------------------------------------------


def two_dynamic_inputs() -> onnx.ModelProto:
    model = conv_model(("N", 3, "H", "W"), [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", None])])
    model.graph.input[1].type.tensor_type.shape.dim[1].Clear()
    model.graph.node.append(helper.make_node("Relu", ["mask"], ["mask_out"]))
    model.graph.output.append(helper.make_tensor_value_info("mask_out", TensorProto.FLOAT, None))
    return model


def test_every_unbound_dim_is_listed_in_one_error():
    with pytest.raises(ModelError) as info:
        cnncompile.load_onnx(two_dynamic_inputs())
    message = str(info.value)
    for part in ("'data' [N, 3, H, W] (dim 0 'N', dim 2 'H', dim 3 'W')", "'mask' [N, ?] (dim 0 'N', dim 1 '?')",
                 "input_shapes={'data': (1, 3, 1, 1), 'mask': (1, 1)}",
                 "--input-shape data=1x3x1x1 --input-shape mask=1x1"):
        assert part in message
    assert "\n" not in message


def test_binding_some_inputs_lists_the_rest():
    with pytest.raises(ModelError, match="'mask'") as info:
        cnncompile.load_onnx(two_dynamic_inputs(), input_shapes={"data": (2, 3, 8, 8)})
    assert "'data'" not in str(info.value)


def test_binding_all_dims_gives_static_types():
    graph = cnncompile.load_onnx(two_dynamic_inputs(), input_shapes={"data": (2, 3, 5, 6), "mask": (2, 7)})
    assert [v.type.shape for v in graph.inputs] == [(2, 3, 5, 6), (2, 7)]
    assert [v.type.shape for v in graph.outputs] == [(2, 4, 5, 6), (2, 7)]


@pytest.mark.parametrize("shape, complaint", [((1, 3, 8), "has rank 3"), ((2, 4, 8, 8), "static dims .* at dim 1"),
                                              ((1, 3, -8, 8), "non-negative integer")])
def test_a_binding_must_fit_what_the_model_declares(shape, complaint):
    with pytest.raises(ModelError, match=complaint):
        cnncompile.load_onnx(conv_model(("N", 3, 8, 8)), input_shapes={"data": shape})


def test_binding_an_unknown_input_names_the_real_ones():
    with pytest.raises(ModelError, match="names 'image'.*its inputs are 'data'"):
        cnncompile.load_onnx(conv_model(), input_shapes={"image": (1, 3, 8, 8)})


def test_cli_lists_every_dynamic_dim_on_one_line(tmp_path, capsys):
    path = tmp_path / "dynamic.onnx"
    onnx.save(two_dynamic_inputs(), path)
    assert main(["inspect", str(path), "--input-shape", "data=1x3x8x8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--input-shape mask=1x1" in err
    assert main(["inspect", str(path), "--no-pager", "--input-shape", "data=1x3x8x8", "--input-shape", "mask=1x2"]) == 0


def minus_one_batch_and_unknown_size() -> onnx.ModelProto:
    """[-1, 3, ?, ?] as a PaddleOCR classifier declares its input: -1 for the batch, unnamed H and W."""
    return conv_model((-1, 3, None, None))


def test_a_dim_written_as_minus_one_is_dynamic():
    with pytest.raises(ModelError) as info:
        cnncompile.load_onnx(minus_one_batch_and_unknown_size())
    assert "'data' [-1, 3, ?, ?] (dim 0 '-1', dim 2 '?', dim 3 '?')" in str(info.value)
    assert "a name, '?' or -1" in str(info.value)


def test_a_model_declared_minus_one_compiles_for_the_bound_shape_and_matches_onnxruntime(tmp_path):
    model = minus_one_batch_and_unknown_size()
    path = tmp_path / "paddle_like.onnx"
    onnx.save(model, path)
    assert main(["compile", str(path), "--target", "llvm", "--input-shape", "data=1x3x48x192",
                 "-o", str(tmp_path / "out")]) == 0
    compiled = cnncompile.load(tmp_path / "out")
    assert [s.shape for s in compiled.inputs] == [(1, 3, 48, 192)]
    x = np.random.default_rng(2).standard_normal((1, 3, 48, 192)).astype(np.float32)
    (want,) = run_ort(model, {"data": x})
    assert relative_error(compiled.run({"data": x})["y"], want) <= 1e-5


def test_an_input_declared_minus_one_and_named_dims_compiles_and_matches_onnxruntime(tmp_path, capsys):
    """x: [-1, 3, 'h', 'w'], the batch as -1 and the image size by name."""
    model = conv_model((-1, 3, "h", "w"))
    model.graph.input[0].name = model.graph.node[0].input[0] = "x"
    path = tmp_path / "named.onnx"
    onnx.save(model, path)
    assert main(["compile", str(path), "--target", "llvm", "-o", str(tmp_path / "out")]) == 2
    assert "'x' [-1, 3, h, w] (dim 0 '-1', dim 2 'h', dim 3 'w')" in capsys.readouterr().err
    assert main(["compile", str(path), "--target", "llvm", "--input-shape", "x=1x3x48x192",
                 "-o", str(tmp_path / "out")]) == 0
    x = np.random.default_rng(3).standard_normal((1, 3, 48, 192)).astype(np.float32)
    (want,) = run_ort(model, {"x": x})
    assert relative_error(cnncompile.load(tmp_path / "out").run({"x": x})["y"], want) <= 1e-5


def test_a_zero_dim_may_be_bound_and_otherwise_is_an_empty_axis():
    model = conv_model((0, 3, 8, 8))
    assert cnncompile.load_onnx(model, {"data": (2, 3, 8, 8)}).inputs[0].type.shape == (2, 3, 8, 8)
    assert cnncompile.load_onnx(model).inputs[0].type.shape == (0, 3, 8, 8)


def test_a_bound_batch_folds_the_exporters_shape_arithmetic_and_matches_onnxruntime():
    """x.view(x.size(0), -1) on a dynamic batch: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch_1d"]),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w"], ["y"], transB=1),
    ]
    arrays = {"zero": np.array(0, np.int64), "axes0": np.array([0]), "minus_one": np.array([-1]),
              "w": he_normal(rng, (5, 48))}
    inits = [numpy_helper.from_array(a, n) for n, a in arrays.items()]
    graph = helper.make_graph(nodes, "view", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    for batch in (1, 6):
        imported = cnncompile.load_onnx(model, {"x": (batch, 3, 4, 4)})
        assert [n.op.name for n in imported.nodes] == ["Reshape", "Gemm"]
        assert imported.nodes[0].attrs.shape == (batch, -1)
        x = rng.standard_normal((batch, 3, 4, 4)).astype(np.float32)
        (want,) = run_ort(model, {"x": x})
        assert relative_error(cnncompile.run_reference(imported, {"x": x})["y"], want) <= 1e-5


# -- initializers that are also graph inputs ------------------------------------------------


def test_an_initializer_listed_as_input_is_a_constant_unless_bound():
    model = conv_model(extra_inputs=[helper.make_tensor_value_info("w", TensorProto.FLOAT, (4, 3, 3, 3))])
    assert [v.name for v in cnncompile.load_onnx(model).inputs] == ["data"]
    overridden = cnncompile.load_onnx(model, input_shapes={"w": (4, 3, 3, 3)})
    assert [v.name for v in overridden.inputs] == ["data", "w"]
    rng = np.random.default_rng(2)
    feeds = {"data": rng.standard_normal((1, 3, 8, 8)).astype(np.float32), "w": he_normal(rng, (4, 3, 3, 3))}
    (want,) = run_ort(model, feeds)
    assert relative_error(cnncompile.run_reference(overridden, feeds)["y"], want) <= 1e-5


# -- unsupported ops ----------------------------------------------------------------------


def test_every_unsupported_node_is_named_in_one_error():
    model = conv_model()
    model.graph.node.extend([
        helper.make_node("Det", ["y"], ["t1"], name="det_a"),
        helper.make_node("Det", ["t1"], ["t2"], name="det_b"),
        helper.make_node("FancyOp", ["t2"], ["f"], name="fancy", domain="com.acme"),
        helper.make_node("Mystery", ["f"], ["z"], name="mystery", domain="org.unknown"),
    ])
    model.graph.output[0].name = "z"
    model.opset_import.append(helper.make_opsetid("com.acme", 3))
    with pytest.raises(UnsupportedError) as info:
        cnncompile.load_onnx(model)
    message = str(info.value)
    assert message.startswith("4 unsupported node(s): ")
    for part in ("Det (ai.onnx, opset 17) x2: 'det_a', 'det_b'", "FancyOp (com.acme, opset 3) x1: 'fancy'",
                 "Mystery (org.unknown, a domain the model never imports) x1: 'mystery'", "`cnncompile ops`"):
        assert part in message


def test_a_registered_op_in_another_domain_is_unsupported():
    model = conv_model()
    model.graph.node[1].domain = "com.microsoft"
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedError, match="Relu \\(com.microsoft, opset 1\\) x1: 'relu'"):
        cnncompile.load_onnx(model)


def test_cnncompiles_own_fused_ops_are_not_onnx_ops():
    model = conv_model()
    model.graph.node[0].op_type = "FusedConv"
    with pytest.raises(UnsupportedError, match="FusedConv \\(ai.onnx, opset 17\\) x1: 'conv'"):
        cnncompile.load_onnx(model)


# -- external data ------------------------------------------------------------------------


def save_external(model: onnx.ModelProto, folder, location="weights.bin") -> str:
    path = os.path.join(folder, "model.onnx")
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=location,
              size_threshold=0)
    return path


def test_external_data_beside_the_model_loads(tmp_path):
    model = conv_model()
    path = save_external(conv_model(), tmp_path)
    assert os.path.getsize(tmp_path / "weights.bin") > 400
    graph = cnncompile.load_onnx(path)
    x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (want,) = run_ort(model, {"data": x})
    assert relative_error(cnncompile.run_reference(graph, {"data": x})["y"], want) <= 1e-5


def test_external_data_in_a_subfolder_loads(tmp_path):
    (tmp_path / "data").mkdir()
    assert len(cnncompile.load_onnx(save_external(conv_model(), tmp_path, "data/weights.bin")).constants) == 2


def relocate(path: str, location: str) -> None:
    """Point every external tensor of the saved model at `location`."""
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, path)


@pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlink"])
def test_external_data_outside_the_model_directory_is_refused(tmp_path, escape):
    inside, outside = tmp_path / "model", tmp_path / "elsewhere"
    inside.mkdir(), outside.mkdir()
    path = save_external(conv_model(), inside)
    os.replace(inside / "weights.bin", outside / "weights.bin")
    location = {"dotdot": "../elsewhere/weights.bin", "absolute": str(outside / "weights.bin"),
                "symlink": "link.bin"}[escape]
    if escape == "symlink":
        os.symlink(outside / "weights.bin", inside / "link.bin")
    relocate(path, location)
    complaint = "must be a path relative" if escape == "absolute" else "outside the model's directory"
    with pytest.raises(ModelError, match=complaint):
        cnncompile.load_onnx(path)


def test_external_data_that_is_missing_or_short_is_an_error(tmp_path):
    path = save_external(conv_model(), tmp_path)
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="holds .* bytes at offset"):
        cnncompile.load_onnx(path)
    os.remove(tmp_path / "weights.bin")
    with pytest.raises(ModelError, match="'weights.bin' does not exist"):
        cnncompile.load_onnx(path)


def test_a_proto_with_unloaded_external_data_asks_for_the_path(tmp_path):
    proto = onnx.load(save_external(conv_model(), tmp_path), load_external_data=False)
    with pytest.raises(ModelError, match="pass the model's path"):
        cnncompile.load_onnx(proto)
    loaded = onnx.load(os.path.join(tmp_path, "model.onnx"))
    assert len(cnncompile.load_onnx(loaded).constants) == 2
