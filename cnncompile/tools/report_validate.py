"""The HTML report of `cnncompile validate --html`: the verdict, the graph before and after (filled by
each layer's error), and the compiled build's error per layer, latency per kernel and passes
(report_build.py), in one self-contained page.

The build keeps its pass pipeline's choices but not its records, so the passes table comes from
running the same target pipeline again on a copy of the imported graph: the passes are deterministic
and take milliseconds beside the build.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping

import numpy as np

from cnncompile.api import target_pipeline
from cnncompile.errors import CnnCompileError
from cnncompile.fileio import write_atomically
from cnncompile.ir.graph import Graph
from cnncompile.passes.manager import run_pipeline
from cnncompile.tools.report import graph_svg, page
from cnncompile.tools.report_build import (
    BuildDetail, build_section, errors_by_node, errors_by_original, legend_svg, measure_build,
)
from cnncompile.tools.validate import ValidateOptions, Validation

NO_INPUTS = ("No layer was checked: layers are checked on the first input set, and --load-outputs gave none "
             "here; add --per-layer to check them")


def measure_validation(graph: Graph, result: Validation, options: ValidateOptions,
                       inputs: Mapping[str, np.ndarray] | None) -> BuildDetail:
    """The judged build's detail: its layers as validate checked them, or checked now on `inputs` (when
    validate did not need them), its kernels timed, its passes run again."""
    model = result.model
    if model is None:
        raise CnnCompileError("this validation keeps no compiled model to report on; run validate again with --html")
    pipeline = target_pipeline(options.pipeline, model.target, precision=options.precision,
                               keep_fp32=options.keep_fp32)
    records = run_pipeline(graph.copy(), pipeline.steps()).records
    layers = result.layers if result.layers or inputs is None else None
    label = f"{model.target}, -p {result.pipeline}, {result.precision}"
    return measure_build(label, graph, model, inputs or {}, records, layers)


def render_validation(name: str, graph: Graph, result: Validation, detail: BuildDetail) -> str:
    """The page: validate's report as the terminal shows it, then the pictures, charts and table."""
    verdict = "PASS" if result.passed else "FAIL"
    after = result.model.graph if result.model is not None else graph
    before_errors = errors_by_original(detail.layers) if detail.layers else None
    after_errors = errors_by_node(detail.layers) if detail.layers else None
    legend = f"<p>Nodes are filled by their error against its bound:</p>{legend_svg()}" if detail.layers else ""
    return page(f"cnncompile validate: {name} ({verdict})", f"""<h2>Verdict</h2>
<pre>{html.escape(result.report())}</pre>
<h2>Graphs before and after</h2>
{legend}
<div class="graphs">
<div class="graph"><h3>imported ({len(graph.nodes)} nodes)</h3>{graph_svg(graph, before_errors)}</div>
<div class="graph"><h3>compiled ({len(after.nodes)} nodes)</h3>{graph_svg(after, after_errors)}</div></div>
{build_section(detail, NO_INPUTS)}""")


def write_validation_html(path: str | os.PathLike, name: str, graph: Graph, result: Validation,
                          options: ValidateOptions, inputs: Mapping[str, np.ndarray] | None) -> None:
    text = render_validation(name, graph, result, measure_validation(graph, result, options, inputs)).encode()
    write_atomically(path, lambda handle: handle.write(text))
