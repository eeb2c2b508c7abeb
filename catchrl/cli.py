"""The ``catchrl`` command (also ``python -m catchrl``): each command is a module of commands/."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from catchrl import __version__
from catchrl.errors import CatchrlError, did_you_mean, first_line
from catchrl.monitor import configure_frameworks

COMMANDS = ("play", "train", "evaluate", "watch", "plot", "bench", "data", "supervised", "sweep")
"""The modules of catchrl/commands, in the order ``--help`` lists them."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), "did you mean" and "--fps must be >= 0"."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        typo = re.match(r"argument .*: invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if typo:
            message += did_you_mean(typo[1], re.findall(r"'([^']*)'", typo[2]))
        message = re.sub(r"^argument (--[\w-]+): must ", r"\1 must ", message)  # options.number
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command (subparsers are :class:`Parser` too)."""
    about = "Catch from 'Deep Learning with Keras': play it, train and compare agents."
    parser = Parser(prog="catchrl", description=about)
    parser.add_argument("--version", action="version", version=f"catchrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"catchrl.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``catchrl`` command; returns the exit code."""
    parser = build_parser()
    try:  # argparse exits on an error (2) and after --help (0)
        args, extra = parser.parse_known_args(argv)
        command = getattr(args, "parser", parser)  # the parser of the command given
        if extra:
            options = [s for action in command._actions for s in action.option_strings]
            typo = did_you_mean(extra[0], options)
            command.error(f"unrecognized arguments: {' '.join(extra)}{typo}")
    except SystemExit as e:
        return int(e.code or 0)
    if not getattr(args, "func", None):  # a group of commands (bench, data...) alone
        command.print_help()
        return 2
    configure_frameworks(verbose=args.verbose)
    try:
        return int(args.func(args) or 0)
    except CatchrlError as e:
        print(f"catchrl {args.command}: error: {first_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"catchrl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
