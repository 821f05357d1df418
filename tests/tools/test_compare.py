"""`compare`: the per-build numbers, the table, JSON, and the self-contained HTML report."""

import json

import numpy as np
import pytest

from cnncompile.ir.types import DType
from cnncompile.ops.elementwise import Add, Relu
from cnncompile.ops.pool import GlobalAveragePool
from cnncompile.ops.tensor import Reshape
from cnncompile.ops.linalg import Gemm
from cnncompile.backends.tvm.target import host_cpu
from cnncompile.compiled import CompiledModel
from cnncompile.passes import preset
from cnncompile.passes.precision import Precision
from cnncompile.selection.pipelines import resolve_precision
from cnncompile.tools.compare import Backend, BackendKind, compare, format_comparison, graph_stats
from cnncompile.tools.report import ERROR_SCALE, graph_svg, node_label
from cnncompile.tools.report_compare import measure_builds, render_html, write_html
from html_harness import Elements
from pass_harness import Net


def small_cnn():
    net = Net((1, 3, 12, 12), dtype=DType.FLOAT32)
    y = net.node(Relu, net.bn(net.conv(net.x, 8, bias=False)))
    y = net.node(Relu, net.node(Add, y,
                                net.bn(net.conv(y, 8, bias=False))))
    flat = net.node(Reshape, net.node(GlobalAveragePool, y), shape=(1, 8))
    return net.done(net.node(Gemm, flat, net.he((8, 5), 8)))


REFERENCE = Backend(BackendKind.REFERENCE)


@pytest.fixture(scope="module")
def comparison():
    """Timed on the reference, as `--time-reference` asks: the graphs' numbers without building them."""
    return compare("small", small_cnn(), [preset("O0"), preset("O1"), preset("O3")], runs=3, seed=0,
                   backend=REFERENCE)


@pytest.fixture(scope="module")
def compiled():
    """The default: each pipeline compiled by TVM for this CPU, here O3 in two precisions."""
    return compare("small", small_cnn(), [preset("O3")], precisions=("fp32", "bf16"), runs=3, seed=0)


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


def test_builds_are_compiled_by_default_in_each_precision(compiled):
    fp32, bf16 = compiled.results
    assert compiled.backend.startswith("TVM (llvm")
    assert [(r.pipeline, r.precision) for r in compiled.results] == [("O3", Precision.FP32), ("O3", Precision.BF16)]
    assert all(isinstance(r.model, CompiledModel) for r in compiled.results)
    assert fp32.error <= 1e-5 and fp32.error < bf16.error <= 2e-2  # bf16's 8-bit mantissa, float32 accumulation
    assert bf16.nodes > fp32.nodes and any(n.op.name == "Cast" for n in bf16.graph.nodes)
    assert all(len(r.times) == 3 and 0 < r.latency.low <= r.latency.median <= r.latency.high
               for r in compiled.results)
    table = format_comparison(compiled)
    rows = table.splitlines()[3:]
    assert "TVM (llvm" in table and [row.split()[:2] for row in rows] == [["O3", "fp32"], ["O3", "bf16"]]
    assert [p["precision"] for p in compiled.as_dict()["pipelines"]] == ["fp32", "bf16"]


def test_a_precision_listed_twice_is_built_once():
    """`auto` resolves for the backend's target (the reference: this CPU) before repeats are dropped."""
    auto = resolve_precision("auto", host_cpu())
    twice = compare("small", small_cnn(), [preset("O1")], precisions=("fp32", auto.value, "auto"), runs=0,
                    backend=REFERENCE)
    assert [r.precision for r in twice.results] == list(dict.fromkeys([Precision.FP32, auto]))


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


def test_html_report_of_compiled_builds(compiled, tmp_path):
    """Two graphs after (one per precision) beside the one before, filled by their layers' errors; per
    build an error chart, a latency-per-kernel chart and the passes table."""
    details = measure_builds(compiled)
    assert [d.label for d in details] == [f"O3 on {compiled.backend}", f"O3 bf16 on {compiled.backend}"]
    assert all(d.layers and all(c.passed for c in d.layers) and d.profile.kernels for d in details)
    path = tmp_path / "report.html"
    write_html(path, compiled, details)
    text = path.read_text()
    page = Elements(text)
    assert page.count("svg", inside="div.graph") == 3
    assert page.count("svg", "chart errors") == 2 and page.count("svg", "chart latency") == 3  # per build, all
    assert page.count("table", "passes") == 2 and page.count("tr", inside="table.passes") > 2
    assert page.count("rect", "fused") == 2 * 2  # O3 fuses both convs, in each precision
    fills = {a.get("fill") for t, a, around in page.tags if t == "rect" and "div.graph" in around}
    assert fills & {colour for _, colour in ERROR_SCALE}  # the builds' nodes filled by error
    assert "fold-batchnorm" in text and "<script" not in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
