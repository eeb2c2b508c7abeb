"""The mistakes a user can fix (stdlib only): ``catchrl`` prints one as one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CatchrlError(Exception):
    """Base of the mistakes a user can fix: a config, a path, a file, a command line."""


class UserError(CatchrlError):
    """A mistake on the command line (an option, a path), named in the message."""


class CheckpointError(CatchrlError, RuntimeError):
    """A checkpoint is missing, truncated, corrupt or made for another setup."""


class RunDirError(CheckpointError):
    """A run directory is not usable: not a catchrl run, malformed, or inconsistent."""


class RunDirLocked(RunDirError):
    """Another live process holds the run directory's lock."""


class DiskFullError(RunDirError):
    """A write into the run directory failed for lack of space (nothing half-written is kept)."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
