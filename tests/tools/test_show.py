"""`show`: the graph as one parseable SVG, fused nodes outlined with the ops they stand for."""

import xml.etree.ElementTree as ET

import pytest

from cnncompile.errors import CnnCompileError
from cnncompile.frontends.load import load_model
from cnncompile.passes import run_pipeline
from cnncompile.selection.pipelines import load_pipeline
from cli_harness import run

SVG = "{http://www.w3.org/2000/svg}"


def titles(path):
    return [t.text for t in ET.parse(path).getroot().iter(f"{SVG}title")]


def test_the_imported_graph_shows_every_node(tmp_path, capsys):
    out = tmp_path / "graph.svg"
    assert run(["show", "zoo:lenet5", "-o", str(out)]) == 0
    names = [n.name for n in load_model("zoo:lenet5").nodes]
    drawn = [t.split(":")[0] for t in titles(out)]
    assert drawn == names and len(names) == 12  # 3 conv+tanh, 2 pools, flatten, gemm+tanh, gemm: nothing fused
    assert not [r for r in ET.parse(out).getroot().iter(f"{SVG}rect") if r.get("class") == "fused"]


def test_after_o3_fused_nodes_are_outlined_with_their_original_ops(tmp_path, capsys):
    out = tmp_path / "o3.svg"
    assert run(["show", "zoo:lenet5", "-p", "O3", "-o", str(out)]) == 0
    graph = run_pipeline(load_model("zoo:lenet5"), load_pipeline("O3").steps()).graph
    root = ET.parse(out).getroot()
    assert [t.split(":")[0] for t in titles(out)] == [n.name for n in graph.nodes]
    fused = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "fused"]
    assert len(fused) == 3  # c1, c3, c5: each conv with its tanh
    assert sum(t.text == "Conv + Tanh" for t in root.iter(f"{SVG}text")) == 3
    assert not list(tmp_path.glob(".o3.svg.*"))  # written through a temporary file, renamed into place


def test_an_output_that_is_not_svg_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(CnnCompileError, match="FILE.svg") as caught:
        run(["show", "zoo:lenet5", "-o", str(tmp_path / "graph.png")])
    assert "\n" not in str(caught.value) and not list(tmp_path.iterdir())


def test_a_bad_model_is_refused_in_one_line(tmp_path):
    with pytest.raises(CnnCompileError, match="zoo") as caught:
        run(["show", "zoo:no_such_model", "-o", str(tmp_path / "g.svg")])
    assert "\n" not in str(caught.value)
