"""`compare`: the per-pipeline numbers, the table, JSON, and the self-contained HTML report."""

import json

import numpy as np
import pytest

from cnncompile.ir.types import DType
from cnncompile.ops.elementwise import Add, Relu
from cnncompile.ops.pool import GlobalAveragePool
from cnncompile.ops.tensor import Reshape
from cnncompile.ops.linalg import Gemm
from cnncompile.passes import preset
from cnncompile.tools.compare import compare, format_comparison, graph_stats
from cnncompile.tools.report import graph_svg, node_label, render_html, write_html
from pass_harness import Net


def small_cnn():
    net = Net((1, 3, 12, 12), dtype=DType.FLOAT32)
    y = net.node(Relu, net.bn(net.conv(net.x, 8, bias=False)))
    y = net.node(Relu, net.node(Add, y,
                                net.bn(net.conv(y, 8, bias=False))))
    flat = net.node(Reshape, net.node(GlobalAveragePool, y), shape=(1, 8))
    return net.done(net.node(Gemm, flat, net.he((8, 5), 8)))


@pytest.fixture(scope="module")
def comparison():
    return compare("small", small_cnn(), [preset("O0"), preset("O1"), preset("O3")], runs=3, seed=0)


def test_each_pipeline_is_measured(comparison):
    o0, o1, o3 = comparison.results
    assert [r.pipeline for r in comparison.results] == ["O0", "O1", "O3"]
    assert o0.nodes == len(comparison.graph.nodes) == 10 and o3.nodes == 5 and o3.fused == 2 and o0.fused == 0
    assert o3.flops < o0.flops and o3.peak_bytes < o0.peak_bytes
    assert o3.parameters == o0.parameters - 4 * 2 * 8 + 2 * 8  # four stats per BN out, a bias per conv in
    assert all(r.error <= 1e-5 for r in comparison.results)
    assert all(len(r.times) == 3 and r.latency.low <= r.latency.median <= r.latency.high for r in comparison.results)
    assert o0.run.seconds == 0 and o3.run.seconds > 0


def test_stats_of_a_graph(comparison):
    stats = graph_stats(comparison.graph)
    assert stats["nodes"] == 10 and stats["fused"] == 0 and stats["peak_bytes"] > 0


def test_table_and_json(comparison):
    table = format_comparison(comparison)
    assert "latency (median [min-max])" in table and table.count("\n") == 5
    data = json.loads(json.dumps(comparison.as_dict()))
    assert data["inputs"] == {"x": [1, 3, 12, 12]} and data["runs"] == 3
    o3 = data["pipelines"][2]
    assert {"nodes", "fused", "parameters", "flops", "peak_activation_bytes", "compile_seconds", "latency_seconds",
            "error", "passes"} <= set(o3)
    assert any(p["name"] == "fold-batchnorm" and p["fired"] == {"fold-bn-into-conv": 2} for p in o3["passes"])


def test_html_report_is_self_contained(comparison, tmp_path):
    path = tmp_path / "report.html"
    write_html(path, comparison)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count("<svg") == 5  # 4 graphs and the latency chart
    assert "FusedConv 3x3 Relu" in text and "FusedConv 3x3 +res Relu" in text
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert not list(tmp_path.glob(".report.html.*"))
    assert render_html(comparison) == text


def test_graph_pictures_layer_by_longest_path():
    graph = small_cnn()
    svg = graph_svg(graph)
    assert svg.count("<rect") == len(graph.nodes) and svg.count("<line") == 10
    assert node_label(graph.nodes[0]) == "Conv 3x3"


def test_check_each_pass_through_compare():
    result = compare("small", small_cnn(), [preset("O3")], runs=0, check_each_pass=True).results[0]
    assert result.latency is None and result.run.first_divergence is None
    assert max(r.error for r in result.run.records) <= 1e-12
    assert np.isfinite(result.error)
