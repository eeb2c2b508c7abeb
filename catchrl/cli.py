"""The ``catchrl`` command (also ``python -m catchrl``).

Each module of :data:`COMMAND_MODULES` has ``add_parser(subparsers)``, which registers its
command with ``func(args) -> exit code``. A :class:`CatchrlError` prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from catchrl.errors import CatchrlError, did_you_mean, first_line

COMMAND_MODULES = tuple(
    f"catchrl.commands.{name}"
    for name in (
        "play",
        "train",
        "evaluate",
        "watch",
        "plot",
        "bench",
        "data",
        "supervised",
        "sweep",
    )
)
"""The modules that register commands, in the order ``--help`` lists them."""


class UserError(CatchrlError):
    """A mistake in the command line, a config, a path or a file: shown as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) and "did you mean" on a mistyped choice."""

    def error(self, message: str) -> NoReturn:
        typo = re.match(r"argument .*: invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if typo:
            message += did_you_mean(typo[1], re.findall(r"'([^']*)'", typo[2]))
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command."""
    from catchrl import __version__

    parser = _Parser(
        prog="catchrl",
        description="Catch from 'Deep Learning with Keras': play it, train and compare agents.",
    )
    parser.add_argument("--version", action="version", version=f"catchrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    _finish(parser)
    return parser


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :mod:`catchrl.envs` -> catchrl.envs
_LITERAL = re.compile(r"``([^`]+)``")  # ``catchrl train`` -> 'catchrl train'
_CODE = re.compile(r"(?<![`'])`([^`]+)`(?![`'])")  # `catchrl train` -> 'catchrl train'


def plain_text(text: str | None) -> str | None:
    """Help text with its reST/Markdown code markup turned into plain quotes."""
    if not text:
        return text
    return _CODE.sub(r"'\1'", _LITERAL.sub(r"'\1'", _ROLE.sub(r"\1", text)))


def _finish(parser: argparse.ArgumentParser) -> None:
    """Plain-text help everywhere; ``--verbose`` on every command (its parser kept in ``args``)."""
    parser.description, parser.epilog = plain_text(parser.description), plain_text(parser.epilog)
    for action in parser._actions:
        action.help = plain_text(action.help)
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for choice in action._choices_actions:
            choice.help = plain_text(choice.help)
            child = action.choices[choice.dest]
            if child.description is None and choice.help:
                child.description = choice.help[0].upper() + choice.help[1:] + "."
        for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
            _finish(child)
            if not any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                child.add_argument("--verbose", action="store_true", help="show TensorFlow's logs")
                child.set_defaults(leaf_parser=child)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``catchrl`` command; returns the exit code."""
    parser = build_parser()
    try:  # argparse exits on an error (2) and after --help (0)
        args, extra = parser.parse_known_args(argv)
        leaf = getattr(args, "leaf_parser", parser)
        if extra:
            options = [s for a in leaf._actions for s in a.option_strings]
            typo = did_you_mean(extra[0], options)
            leaf.error(f"unrecognized arguments: {' '.join(extra)}{typo}")
    except SystemExit as e:
        return int(e.code or 0)
    if not getattr(args, "func", None):
        leaf.print_help()
        return 2
    from catchrl.frameworks import configure_frameworks

    configure_frameworks(verbose=args.verbose)
    try:
        return int(args.func(args) or 0)
    except CatchrlError as e:  # UserError, and library errors a command did not map
        print(f"catchrl {args.command}: error: {first_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"catchrl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
