"""The compile progress bar draws on a terminal and stays silent otherwise."""

import io

from cnncompile.tools.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_when_not_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar("lowering", 3, 10)
    bar.close()
    assert stream.getvalue() == ""


def test_one_line_per_stage_on_a_terminal():
    stream = Terminal()
    bar = ProgressBar(stream)
    for done in range(3):
        bar("lowering", done, 2)
    bar("build", 1, 1)
    bar.close()
    lines = stream.getvalue().split("\n")
    assert lines[0].endswith("2/2") and "#" * 30 in lines[0] and lines[1].endswith("1/1") and lines[2] == ""
