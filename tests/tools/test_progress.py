"""The compile and tuning bars draw on a terminal and stay silent otherwise."""

import io

from cnncompile.frontends.dsl import Conv, Sequential
from cnncompile.stages import Stage
from cnncompile.tools.progress import ProgressBar, TuneBar
from cnncompile.tuning.progress import TuneStatus
from cnncompile.tuning.tuner import TuneReport, workloads


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_when_not_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar(Stage.LOWERING, 3, 10)
    bar.close()
    assert stream.getvalue() == ""


def test_one_line_per_stage_on_a_terminal():
    stream = Terminal()
    bar = ProgressBar(stream)
    for done in range(3):
        bar(Stage.LOWERING, done, 2)
    bar(Stage.BUILD, 1, 1)
    bar.close()
    lines = stream.getvalue().split("\n")
    assert lines[0].endswith("2/2") and "#" * 30 in lines[0] and lines[1].endswith("1/1") and lines[2] == ""
    assert lines[0].startswith("\rlowering ") and lines[1] == f"\rbuild     [{'#' * 30}] 1/1"


def test_compile_reports_each_stage_in_order_and_finishes_it():
    from cnncompile.api import compile as compile_model
    from cnncompile.ir.graph import Graph
    from cnncompile.ir.types import TensorType
    from cnncompile.ops.elementwise import Relu

    graph = Graph("relu")
    graph.mark_outputs(*graph.add_node(Relu, [graph.add_input("x", TensorType((1, 4, 2, 2)))]))
    told: list[tuple[Stage, int, int]] = []
    compile_model(graph, "llvm", "O0", progress=lambda *report: told.append(report))
    order = list(dict.fromkeys(stage for stage, _, _ in told))
    assert order == [Stage.IMPORT, Stage.PASSES, Stage.LOWERING, Stage.BUILD]
    assert all(any(s == stage and done == total for s, done, total in told) for stage in order)


def test_the_tuning_bar_shows_count_eta_and_workload_on_a_terminal_and_only_the_summary_elsewhere():
    report = TuneReport(tuned=[], untuned=[workloads(Sequential(Conv(8, 1)).build((1, 8, 4, 4)))[0].spec],
                        seconds=3.0, budget_seconds=3.0)
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        bar = TuneBar(stream)
        bar(TuneStatus(3, 12, "1x8x4x4 -> 8 k1x1", 75.0))
        bar.finish(report)
    lines = terminal.getvalue().strip("\n").split("\n")
    assert "3/12 ETA 1m15s  1x8x4x4 -> 8 k1x1" in lines[0]
    assert lines[1] == log.getvalue().strip() == report.summary()
    assert "budget ran out: 1 workload(s)" in report.summary() and "1x8x4x4 -> 8 k1x1" in report.summary()
