"""The errors a user can fix, shared by every layer (stdlib only, imports nothing of catchrl).

The library raises these; the ``catchrl`` command prints them as one line and
exits 2 (:mod:`catchrl.cli`). Nothing here imports the CLI, so any layer may
raise them.
"""

from __future__ import annotations

__all__ = ["CatchrlError", "CheckpointError", "DiskFullError", "RunDirError", "RunDirLocked"]


class CatchrlError(Exception):
    """Base of the mistakes a user can fix: a config, a path, a file, a command line."""


class CheckpointError(CatchrlError, RuntimeError):
    """A checkpoint is missing, truncated, corrupt or made for another setup."""


class RunDirError(CheckpointError):
    """A run directory is not usable: not a catchrl run, malformed, or inconsistent."""


class RunDirLocked(RunDirError):
    """Another live process holds the run directory's lock."""


class DiskFullError(RunDirError):
    """A write into the run directory failed for lack of space (nothing half-written is kept)."""
