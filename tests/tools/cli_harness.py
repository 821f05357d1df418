"""The `profile` and `show` commands through a parser built with their own `register`.

cli/__init__.py registers them with one call to `profile_commands.register`; these tests build
the parser the same way (cli.build_parser's subparsers plus `register`), so they run before
and after that line is added. What main() adds around a handler (a CnnCompileError printed as
one line, exit 2) is tested with main itself in tests/test_cli.py; here a handler's bad input
must surface as a CnnCompileError with a one-line message.
"""

import argparse

from cnncompile.cli import build_parser
from cnncompile.cli.profile_commands import register


def parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "profile" not in commands.choices:  # cli/__init__.py does not register them yet
        register(commands)
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse(argv)
    return args.handler(args)
