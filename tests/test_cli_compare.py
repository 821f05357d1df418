"""The `passes` and `compare` commands."""

import json

from cnncompile.cli import main
from cnncompile.frontends import zoo
from cnncompile.frontends.onnx_export import save_onnx
from cnncompile.ir.types import DType
from cnncompile.ops.elementwise import Relu
from cnncompile.passes import PRESETS
from cnncompile.selection.pipelines import CATALOG
from pass_harness import Net


def model_file(tmp_path):
    net = Net((1, 3, 8, 8), dtype=DType.FLOAT32)
    y = net.node(Relu, net.bn(net.conv(net.x, 4)))
    path = tmp_path / "m.onnx"
    save_onnx(net.done(net.node(Relu, net.bn(net.conv(y, 4)))), path)
    return str(path)


def test_passes_lists_every_pass_and_preset(capsys):
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}  " in out for name in CATALOG) and "O3  remove-identity" in out
    assert main(["passes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["passes"]) == set(CATALOG) and data["presets"]["O2"] == list(PRESETS["O2"])
    assert data["passes"]["fuse-conv-epilogue"]["options"]["residual"] is True


def test_compare_table_json_and_html(tmp_path, capsys):
    """By default each pipeline is compiled by TVM for this machine and timed there, in fp32."""
    path = model_file(tmp_path)
    assert main(["compare", path, "-p", "O0", "-p", "O3", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "O0        fp32 " in out and "O3        fp32 " in out and "latency on TVM (llvm" in out
    html = tmp_path / "r.html"
    assert main(["compare", path, "-p", "O1", "--runs", "1", "--json", "--html", str(html)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["pipeline"] for p in data["pipelines"]] == ["O1"] and data["html"] == str(html)
    assert data["backend"].startswith("TVM (llvm") and 'class="chart errors"' in html.read_text()


def test_compare_builds_each_pipeline_in_each_precision(tmp_path, capsys):
    path = model_file(tmp_path)
    assert main(["compare", path, "-p", "O0", "-p", "O3", "--precision", "fp32,bf16", "--runs", "1", "--json"]) == 0
    rows = [(p["pipeline"], p["precision"], p["error"]) for p in json.loads(capsys.readouterr().out)["pipelines"]]
    assert [r[:2] for r in rows] == [("O0", "fp32"), ("O0", "bf16"), ("O3", "fp32"), ("O3", "bf16")]
    assert all(e <= 1e-5 for _, p, e in rows if p == "fp32") and all(1e-5 < e <= 2e-2 for _, p, e in rows if p == "bf16")


def test_compare_times_the_reference_only_when_asked(tmp_path, capsys):
    path = model_file(tmp_path)
    assert main(["compare", path, "-p", "O3", "--time-reference", "--precision", "bf16", "--runs", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "the reference backend (float32)" and data["pipelines"][0]["precision"] == "bf16"
    assert main(["compare", path, "--time-reference", "--target", "llvm"]) == 2
    assert "--time-reference times the NumPy reference" in capsys.readouterr().err
    assert main(["compare", path, "--precision", "fp32,fp8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--precision 'fp8' is not one of fp32, fp16, bf16, auto" in err


def test_compare_with_a_toml_pipeline_check_each_pass_and_dump(tmp_path, capsys):
    path = model_file(tmp_path)
    toml = tmp_path / "fold.toml"
    toml.write_text('[[pass]]\nname = "fold-batchnorm"\n'
                    '[[pass]]\nname = "fuse-conv-epilogue"\nactivations = ["Relu"]\n')
    argv = ["compare", path, "-p", str(toml), "--runs", "0", "--check-each-pass", "--explain", "--verify",
            "--dump-after", "fold-batchnorm"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "fold:" in captured.out and "fuse-conv-epilogue" in captured.out and "change" in captured.out
    assert "// fold: IR after fold-batchnorm" in captured.err and "BatchNormalization" not in captured.err


def test_compare_with_an_unknown_pipeline_is_a_one_line_error(tmp_path, capsys):
    assert main(["compare", model_file(tmp_path), "-p", "O9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown pipeline preset 'O9'" in err


def test_compare_on_the_tvm_backend(tmp_path, capsys):
    """With --target, each pipeline's graph is compiled by TVM, timed, and judged against float64."""
    path = tmp_path / "resnet18.onnx"
    save_onnx(zoo.build("resnet18", input_shape=(1, 3, 32, 32)), path)
    assert main(["compare", str(path), "-p", "O0", "-p", "O3", "--target", "llvm", "--runs", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"].startswith("TVM (llvm")  # with the CPU it resolved to
    assert [p["pipeline"] for p in report["pipelines"]] == ["O0", "O3"]
    for pipeline in report["pipelines"]:
        assert pipeline["error"] <= 1e-5 and pipeline["latency_seconds"]["median"] > 0
