"""The ``catchrl`` command (also ``python -m catchrl``).

Each sub-command lives in its own module exposing ``add_parser(subparsers)``,
which registers the command and sets ``func`` (``args -> int`` exit code) on
its parser. Errors a user can fix (:class:`UserError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from catchrl.errors import CatchrlError

__all__ = ["COMMAND_MODULES", "UserError", "build_parser", "main"]

# Modules that register sub-commands, in the order --help lists them.
COMMAND_MODULES = (
    "catchrl.commands.play",
    "catchrl.commands.train",
    "catchrl.commands.evaluate",
    "catchrl.commands.watch",
    "catchrl.commands.plot",
    "catchrl.commands.bench",
    "catchrl.commands.data",
    "catchrl.commands.supervised",
    "catchrl.commands.sweep",
)


class UserError(CatchrlError):
    """A mistake in the command line, a config, a path or a file: shown as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``catchrl train: error: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the command and what was wrong; exit 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command whose module is present."""
    parser = _Parser(
        prog="catchrl",
        description="Catch from 'Deep Learning with Keras': play it, train and compare agents.",
    )
    from catchrl import __version__

    parser.add_argument("--version", action="version", version=f"catchrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that command is not written yet
                continue
            raise
        module.add_parser(sub)
    _finish(parser)
    return parser


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :mod:`catchrl.envs` -> catchrl.envs
_LITERAL = re.compile(r"``([^`]+)``")  # ``catchrl train`` -> 'catchrl train'
_CODE = re.compile(r"(?<![`'])`([^`]+)`(?![`'])")  # `catchrl train` -> 'catchrl train'


def plain_text(text: str | None) -> str | None:
    """Help text with its reST/Markdown code markup turned into plain quotes."""
    if not text:
        return text
    text = _ROLE.sub(r"\1", text)
    return _CODE.sub(r"'\1'", _LITERAL.sub(r"'\1'", text))


def _finish(parser: argparse.ArgumentParser, leaf_options: bool = False) -> None:
    """Plain-text help on every parser; ``--verbose`` on every command that runs."""
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in parser._actions:
        action.help = plain_text(action.help)
    for action in subs:
        for choice in action._choices_actions:
            choice.help = plain_text(choice.help)
            child = action.choices[choice.dest]
            if child.description is None and choice.help:  # at least the one-line help
                child.description = choice.help[0].upper() + choice.help[1:] + "."
        for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
            _finish(child, leaf_options=True)
    if leaf_options and not subs:
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="show TensorFlow's INFO/WARNING logs (hidden by default)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``catchrl`` command; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from catchrl.frameworks import configure_frameworks

    configure_frameworks(verbose=getattr(args, "verbose", False))
    try:
        return int(args.func(args) or 0)
    except CatchrlError as e:  # UserError, and library errors a command did not map
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"catchrl {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"catchrl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
