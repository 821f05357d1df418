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
    path = model_file(tmp_path)
    assert main(["compare", path, "-p", "O0", "-p", "O3", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "O0 " in out and "O3 " in out and "latency" in out
    html = tmp_path / "r.html"
    assert main(["compare", path, "-p", "O1", "--runs", "1", "--json", "--html", str(html)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["pipeline"] for p in data["pipelines"]] == ["O1"] and data["html"] == str(html)
    assert "<svg" in html.read_text()


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
    assert report["backend"] == "TVM (llvm)"
    assert [p["pipeline"] for p in report["pipelines"]] == ["O0", "O3"]
    for pipeline in report["pipelines"]:
        assert pipeline["error"] <= 1e-5 and pipeline["latency_seconds"]["median"] > 0
