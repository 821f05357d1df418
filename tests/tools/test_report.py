"""`validate --html`: the page holds both graphs (filled by each layer's error), the charts and the passes
table, as html.parser reads it and as headless Chromium lays it out."""

import io
import json
from contextlib import redirect_stdout

import pytest

from cnncompile.cli import main
from cnncompile.tools.report import ERROR_SCALE, FAILED, error_colour
from cnncompile.tools.layers import SAFETY
from html_harness import Elements, chromium, render  # noqa: F401 (chromium is a fixture)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """zoo:lenet5 validated layer by layer: the page, and the JSON printed beside it."""
    path = tmp_path_factory.mktemp("report") / "lenet5.html"
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(["validate", "zoo:lenet5", "--per-layer", "--json", "--html", str(path)]) == 0
    return path, json.loads(printed.getvalue())


def check_page(page: Elements, layers: int) -> None:
    """Two graph pictures, an error chart with a bar per layer, a latency chart, the passes table."""
    assert page.count("svg", inside="div.graph") == 2
    assert page.count("svg", "chart errors") == 1 and page.count("rect", "bar", inside="svg.chart errors") == layers
    assert page.count("svg", "chart latency") == 1 and page.count("rect", inside="svg.chart latency") > 3
    assert page.count("table", "passes") == 1 and page.count("tr", inside="table.passes") > 3
    assert page.count("rect", "fused", inside="div.graph") == 3  # lenet5's three conv+tanh at O3


def test_validate_writes_the_page(report):
    path, data = report
    assert data["passed"] and data["html"] == str(path)
    text = path.read_text()
    page = Elements(text)
    check_page(page, len(data["layers"]))
    fills = [a["fill"] for t, a, around in page.tags if t == "rect" and "div.graph" in around and "fill" in a]
    assert fills and FAILED not in fills and set(fills) & {colour for _, colour in ERROR_SCALE}
    assert "fold-batchnorm" in text or "fuse-conv-epilogue" in text
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_the_error_colours_fail_beyond_the_safety_margin():
    assert error_colour(0.0) == ERROR_SCALE[0][1] and error_colour(SAFETY) != FAILED
    assert error_colour(SAFETY * 1.01) == FAILED and error_colour(float("nan")) == FAILED


def test_headless_chromium_lays_out_the_page(report, chromium, tmp_path):  # noqa: F811
    """The DOM after Chromium parsed and laid out the page, and a screenshot of it."""
    path, data = report
    dom = render(chromium, path, tmp_path / "profile", "--dump-dom")
    check_page(Elements(dom), len(data["layers"]))
    shot = tmp_path / "lenet5.png"
    render(chromium, path, tmp_path / "profile", "--window-size=1280,2000", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
