"""Show long text a screen at a time when a person is reading it, as git does.

Only when stdout is a terminal and the text is taller than it: pipes, files and tests
get the plain text. The pager is $CNNCOMPILE_PAGER, else $PAGER, else `less`; an empty
value or `cat` turns paging off, and a pager that cannot start falls back to printing.
`less` gets LESS=FRSX unless the user set LESS: quit if one screen, keep colours,
chop long lines (tables stay aligned), leave the text on screen afterwards.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from typing import TextIO


def pager_command(environ: dict[str, str] | None = None) -> list[str] | None:
    env = os.environ if environ is None else environ
    text = env.get("CNNCOMPILE_PAGER", env.get("PAGER", "less"))
    command = shlex.split(text)
    if not command or command == ["cat"]:
        return None
    return command


def page(text: str, stream: TextIO | None = None) -> None:
    """Write `text` (plus a newline) to `stream`, through a pager when that helps."""
    stream = sys.stdout if stream is None else stream
    command = pager_command()
    rows = shutil.get_terminal_size().lines
    if command is None or not stream.isatty() or text.count("\n") + 1 < rows:
        print(text, file=stream)
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRSX")
    try:
        pager = subprocess.Popen(command, stdin=subprocess.PIPE, env=env, text=True)
    except OSError:
        print(text, file=stream)
        return
    try:
        pager.communicate(text + "\n")
    except BrokenPipeError:
        pass
    except KeyboardInterrupt:
        pager.kill()
        pager.wait()
