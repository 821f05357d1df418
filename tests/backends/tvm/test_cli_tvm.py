"""`compile`, `run DIR` and `validate` from the command line; artifacts; every bad input is one line, exit 2."""

import hashlib
import json
import shutil

import numpy as np
import pytest

import cnncompile
from cnncompile.backends.tvm import lowering
from cnncompile.backends.tvm.artifact import LIBRARY, MANIFEST
from cnncompile.backends.tvm.kernel import Kernel, KernelKind, Lowering
from cnncompile.cli import main
from cnncompile.ops.elementwise import Relu
from test_cli import one_line_error, small_model
from tvm import te

SHAPE = "data=1x3x8x8"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model") / "small.onnx")


@pytest.fixture(scope="module")
def artifact(model_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "small"
    assert main(["compile", str(model_path), "--input-shape", SHAPE, "--target", "llvm", "-o", str(out)]) == 0
    return out


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32))
    return path


def test_compile_writes_library_manifest_and_graph(artifact, model_path):
    manifest = json.loads((artifact / MANIFEST).read_text())
    assert {p.name for p in artifact.iterdir()} == {LIBRARY, MANIFEST, "model.onnx"}
    assert manifest["inputs"] == [{"name": "data", "shape": [1, 3, 8, 8], "dtype": "float32"}]
    assert manifest["outputs"][0]["name"] == "out" and manifest["pipeline"] == "O3"
    assert manifest["target"]["device"] == "llvm" and set(manifest["versions"]) >= {"tvm", "cnncompile"}
    assert manifest["source_sha256"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    optimized = cnncompile.load_onnx(str(artifact / "model.onnx"))
    # FusedConv spelled out for ONNX, then the LayoutTransform of its NCHW4c output back to NCHW as Identity
    assert [n.op.name for n in optimized.nodes] == ["Conv", "Relu", "Identity"]


def test_run_artifact_matches_the_reference(artifact, model_path, data, tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert main(["run", str(artifact), "--input", f"data={data}", "--output", str(out)]) == 0
    assert "out: float32[1, 4, 8, 8]" in capsys.readouterr().out
    graph = cnncompile.load_onnx(str(model_path), {"data": (1, 3, 8, 8)})
    want = cnncompile.run_reference(graph, {"data": np.load(data)})["out"]
    np.testing.assert_allclose(np.load(out)["out"], want, rtol=1e-5, atol=1e-5)


def test_run_of_an_onnx_file_still_uses_the_reference(model_path, capsys):
    assert main(["run", str(model_path), "--input-shape", SHAPE, "--random-inputs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["out"]["shape"] == [1, 4, 8, 8]


def test_loaded_artifact_runs_like_the_compiled_model(artifact, model_path):
    inputs = {"data": np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    compiled = cnncompile.compile(str(model_path), target="llvm", input_shapes={"data": (1, 3, 8, 8)})
    np.testing.assert_array_equal(cnncompile.load(artifact).run(inputs)["out"], compiled.run(inputs)["out"])
    timing = compiled.benchmark(inputs, warmup=1, repeat=5)
    assert timing.min_ms <= timing.median_ms <= timing.max_ms and timing.repeats == 5


def test_validate_passes_with_json(model_path, capsys):
    assert main(["validate", str(model_path), "--input-shape", SHAPE, "--target", "llvm", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"passed", "error", "tolerance", "target", "pipeline", "outputs"}
    assert report["passed"] and report["error"] <= report["tolerance"] == 1e-5
    assert report["outputs"]["out"]["shape"] == [1, 4, 8, 8]


def test_default_target_is_said_in_one_line(model_path, tmp_path, capsys):
    assert main(["compile", str(model_path), "--input-shape", SHAPE, "-p", "O0", "-o", str(tmp_path / "a")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("target: ") and "default" in first


def _broken_relu(call):
    (x,) = call.inputs
    return Kernel([te.compute(x.shape, lambda *i: x[i] * 1.5, name="y")], KernelKind.INJECTIVE)


def test_validate_names_the_first_node_that_diverged(model_path, monkeypatch, capsys):
    monkeypatch.setattr(lowering, "LOWERINGS", {**lowering.LOWERINGS, Relu: Lowering(_broken_relu)})
    assert main(["validate", str(model_path), "--input-shape", SHAPE, "--target", "llvm", "-p", "O0",
                 "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["passed"]
    assert report["first_divergence"]["op"] == "Relu" and report["first_divergence"]["node"] == "relu1"
    assert report["first_divergence"]["input_error"] < 1e-5


@pytest.mark.parametrize("args, message", [
    (["compile", "{model}", "--input-shape", SHAPE, "--target", "tpu", "-o", "{tmp}/x"], "unknown target 'tpu'"),
    (["compile", "{model}", "--input-shape", SHAPE, "--target", "cuda:sm_x", "-o", "{tmp}/x"], "unknown CUDA arch"),
    (["run", "{artifact}", "--input", "data={bad_shape}"], "has shape [1, 3, 4, 4]"),
    (["run", "{artifact}", "--input", "data={bad_dtype}"], "is float64 but the model takes float32"),
    (["run", "{artifact}", "--input", "image={data}"], "missing input(s) data"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, model_path, artifact, data, tmp_path, capsys):
    np.save(tmp_path / "shape.npy", np.zeros((1, 3, 4, 4), np.float32))
    np.save(tmp_path / "dtype.npy", np.zeros((1, 3, 8, 8)))
    fill = {"model": model_path, "tmp": tmp_path, "artifact": artifact, "data": data,
            "bad_shape": tmp_path / "shape.npy", "bad_dtype": tmp_path / "dtype.npy"}
    assert main([a.format(**fill) for a in args]) == 2
    assert message in one_line_error(capsys)


def _copy(artifact, tmp_path):
    return shutil.copytree(artifact, tmp_path / "copy")


def test_missing_library_is_one_line_and_exit_2(artifact, data, tmp_path, capsys):
    copy = _copy(artifact, tmp_path)
    (copy / LIBRARY).unlink()
    assert main(["run", str(copy), "--input", f"data={data}"]) == 2
    assert "missing model.so" in one_line_error(capsys)


def test_corrupted_library_is_refused_before_loading(artifact, data, tmp_path, capsys):
    copy = _copy(artifact, tmp_path)
    library = bytearray((copy / LIBRARY).read_bytes())
    library[len(library) // 2] ^= 0xFF
    (copy / LIBRARY).write_bytes(bytes(library))
    assert main(["run", str(copy), "--input", f"data={data}"]) == 2
    assert "does not match the sha256" in one_line_error(capsys)


def test_garbled_manifest_is_one_line_and_exit_2(artifact, data, tmp_path, capsys):
    copy = _copy(artifact, tmp_path)
    (copy / MANIFEST).write_text("{not json")
    assert main(["run", str(copy), "--input", f"data={data}"]) == 2
    assert "not valid JSON" in one_line_error(capsys)


def test_saving_is_atomic(artifact, model_path, tmp_path, monkeypatch):
    compiled = cnncompile.compile(str(model_path), target="llvm", input_shapes={"data": (1, 3, 8, 8)})
    target = tmp_path / "out"
    compiled.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(compiled.library, "export_library", crash)
    with pytest.raises(OSError, match="disk full"):
        compiled.save(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # the old artifact is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]        # and no temporary is left behind
    monkeypatch.undo()
    compiled.save(target)                                               # replacing an artifact works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_saving_over_a_foreign_directory_is_refused(model_path, tmp_path):
    compiled = cnncompile.compile(str(model_path), target="llvm", pipeline="O0",
                                  input_shapes={"data": (1, 3, 8, 8)})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(cnncompile.CnnCompileError, match="not a cnncompile artifact"):
        compiled.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
