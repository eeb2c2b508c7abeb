"""The run directory of every trainer: lock, config, metrics, TensorBoard, checkpoints, models.

Layout::

    RUN/
      .lock              held (flock) by the one process writing the run
      config.toml|json   the run's config (RL runs: TOML; supervised runs: JSON)
      metrics.tsv        one row per game (RL) or epoch (supervised)
      tb/                TensorBoard events
      checkpoints/
        latest           name of the newest complete checkpoint
        ckpt-.../        arrays (*.npz), state.json, manifest.json
      evals.json, eval.json, best.json
      best.* / model.*   the best-validation and the final model

**One writer**: :meth:`RunDir.lock` takes an exclusive ``flock`` on ``.lock``
(its pid and host written in it); a second process gets :class:`RunDirLocked`
naming the holder; the kernel drops the lock when its process dies.
**Nothing half-written**: every file is written beside and renamed into place;
a checkpoint folder is complete (its ``manifest.json`` lists every file's size
and SHA-256) before ``latest`` names it, and older ones are then deleted (the
latest ``keep``). A full disk raises :class:`DiskFullError` after removing what
it half wrote. ``.lock`` and ``metrics.tsv`` are opened without following links.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from catchrl.errors import CheckpointError, RunDirError, RunDirLocked
from catchrl.fileio import (
    check_manifest,
    fsync_write,
    open_nofollow,
    read_json,
    read_text,
    remove,
    space_checked,
    write_atomic,
    write_manifest,
)

FORMAT_VERSION = 2
METRIC_COLUMNS = tuple(
    "game loss wins epsilon steps steps_per_s win_rate_100 wall_time reward".split()
)
"""An RL run's ``metrics.tsv`` columns: the book's (game, loss, cumulative wins) first."""
_ROW_FORMATS = ("{}", "{:.6g}", "{}", "{:.5g}", "{}", "{:.1f}", "{:.4f}", "{:.2f}", "{:g}")
_CKPT_NAME = re.compile(r"ckpt-[A-Za-z0-9-]{1,64}")
_RUN_MARKERS = ("config.toml", "config.json", "metrics.tsv", "checkpoints")
"""What makes a folder a run; a fresh run refuses a folder with anything else."""
Arrays = dict[str, dict[str, np.ndarray]]


def balls_caught(reward: float, balls_per_game: int) -> int:
    """Balls caught in a finished game from its total reward (+1 per catch, -1 per miss)."""
    return int((reward + balls_per_game) // 2)


def metrics_row(*cells: float) -> str:
    """One ``metrics.tsv`` line from the values of :data:`METRIC_COLUMNS`, in order."""
    return "\t".join(f.format(c) for f, c in zip(_ROW_FORMATS, cells, strict=True)) + "\n"


def checkpoint_name(games: int, steps: int) -> str:
    """The folder of a checkpoint after ``games`` games and ``steps`` steps (sorts by time)."""
    return f"ckpt-g{games:08d}-s{steps:012d}"


class RunDir:
    """Paths, lock and atomic I/O of one run directory.

    Args:
        path: The folder (created when the lock is first taken or on first write).
        keep: Complete checkpoints to keep (1: the latest; older ones are deleted).

    Raises:
        RunDirError: ``path`` is empty or names a file.

    """

    def __init__(self, path: str | Path, keep: int = 1) -> None:
        if str(path).strip() == "":
            raise RunDirError("the run directory is an empty path; give a folder name")
        self.path = Path(path)
        self.keep = max(int(keep), 1)
        self._lock_fd: int | None = None
        self._created = False
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"run directory {str(self.path)!r} is a file, not a folder")

    config_path = property(lambda self: self.path / "config.toml")
    metrics_path = property(lambda self: self.path / "metrics.tsv")
    tb_path = property(lambda self: self.path / "tb")
    checkpoints_path = property(lambda self: self.path / "checkpoints")
    lock_path = property(lambda self: self.path / ".lock")
    model_path = property(lambda self: self.path / "model.keras")

    def create(self) -> None:
        """Make the folder and its sub-folders."""
        with space_checked(str(self.path)):
            self.checkpoints_path.mkdir(parents=True, exist_ok=True)
            self.tb_path.mkdir(exist_ok=True)

    def is_run(self) -> bool:
        """Whether the folder holds (part of) a catchrl run."""
        return any((self.path / name).exists() for name in _RUN_MARKERS)

    def check_fresh(self) -> None:
        """Refuse to start a new run in a folder holding a run or anything else (RunDirError)."""
        if not self.path.is_dir():
            return
        if self.is_run():
            raise RunDirError(
                f"run directory {str(self.path)!r} already holds a run; pass --resume to "
                "continue it or choose another --run-dir"
            )
        others = sorted(p.name for p in self.path.iterdir() if p.name != ".lock")
        if others:
            shown = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
            raise RunDirError(
                f"{str(self.path)!r} is not empty and not a catchrl run ({shown}); "
                "choose a new or empty --run-dir"
            )

    # -- the lock -------------------------------------------------------------

    def acquire_lock(self) -> None:
        """Take the run's lock (creating the folder); raise RunDirLocked if another holds it."""
        if self._lock_fd is not None:
            return
        if not self.path.exists():
            with space_checked(str(self.path)):
                self.path.mkdir(parents=True)
            self._created = True
        while True:
            try:
                fd = open_nofollow(self.lock_path, os.O_RDWR | os.O_CREAT)
            except OSError as e:
                self._undo_create()
                raise RunDirError(f"cannot lock {self.path}: {e.strerror}") from e
            except RunDirError:
                self._undo_create()
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                os.close(fd)
                raise RunDirLocked(
                    f"run directory {str(self.path)!r} is in use by {_describe(holder)}; "
                    "wait for it to finish or stop it first"
                ) from None
            try:  # the holder before us may have removed the file after we opened it
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._lock_fd = fd
        self.clean_stale()

    def release_lock(self) -> None:
        """Drop the lock (and the folder, if taking the lock created it and it stayed empty)."""
        if self._lock_fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_path)
        os.close(self._lock_fd)  # closing drops the flock
        self._lock_fd = None
        self._undo_create()

    def _undo_create(self) -> None:
        if self._created:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only if empty
            self._created = False

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDir]:
        """Hold the run's lock for a ``with`` block (see :meth:`acquire_lock`)."""
        self.acquire_lock()
        try:
            yield self
        finally:
            self.release_lock()

    @property
    def locked(self) -> bool:
        """Whether this object holds the run's lock."""
        return self._lock_fd is not None

    def clean_stale(self) -> None:
        """Remove temporary files and folders left by writers that died mid-write."""
        for folder in (self.path, self.checkpoints_path):
            if folder.is_dir():
                for p in folder.iterdir():
                    if re.search(r"\.tmp\d+(\.[a-z]+)?$", p.name):
                        remove(p)

    # -- small files ------------------------------------------------------------

    def write_config(self, toml_text: str) -> None:
        """Write ``config.toml`` atomically."""
        self.create()
        write_atomic(self.config_path, toml_text.encode())

    def write_json(self, name: str, data: Any) -> None:
        """Write ``RUN/name`` as JSON atomically."""
        self.create()
        write_atomic(self.path / name, json.dumps(data, indent=1).encode())

    def read_json(self, name: str) -> Any:
        """``RUN/name`` parsed as JSON; a clear error if it is not UTF-8 JSON."""
        return read_json(self.path / name)

    def write_file_atomic(self, name: str, write: Callable[[Path], Any]) -> Path:
        """Write ``RUN/name`` through ``write(tmp_path)`` (a Keras or SB3 saver), then rename."""
        final = self.path / name
        stem, dot, ext = name.partition(".")
        tmp = self.path / f"{stem}.tmp{os.getpid()}{dot}{ext}"
        with space_checked(str(final), tmp):
            write(tmp)
            os.replace(tmp, final)
        return final

    # -- metrics -------------------------------------------------------------

    def cut_metrics(self, size: int) -> None:
        """On resume: cut ``metrics.tsv`` back to the ``size`` bytes a checkpoint recorded.

        Raises:
            RunDirError: The file is shorter (cut or replaced after the checkpoint).

        """
        path = self.metrics_path
        have = path.stat().st_size if path.exists() else 0
        if have < size:
            raise RunDirError(
                f"{path} has {have} bytes but the checkpoint recorded {size}: it was "
                "truncated or replaced, so the run's record is incomplete"
            )
        if path.exists():
            fd = open_nofollow(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)

    def open_metrics(self, truncate_at: int | None = None) -> IO[str]:
        """Open ``metrics.tsv`` for appending (header written if new; cut back on resume)."""
        if truncate_at is not None:
            self.cut_metrics(truncate_at)
        fd = open_nofollow(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        f = os.fdopen(fd, "a", buffering=1, encoding="utf-8")
        if os.fstat(fd).st_size == 0:
            f.write("\t".join(METRIC_COLUMNS) + "\n")
        return f

    def read_metrics(self) -> dict[str, np.ndarray]:
        """``metrics.tsv`` as one float array per column."""
        if not self.metrics_path.is_file():
            raise RunDirError(f"no metrics.tsv in {str(self.path)!r}")
        lines = read_text(self.metrics_path).splitlines()
        if not lines:
            raise RunDirError(f"{self.metrics_path} is empty")
        header = lines[0].split("\t")
        rows = [line.split("\t") for line in lines[1:] if line.strip()]
        try:
            table = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
        except ValueError as e:
            raise RunDirError(f"{self.metrics_path} is malformed: {e}") from e
        return {name: table[:, i] for i, name in enumerate(header)}

    # -- checkpoints ---------------------------------------------------------

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (None: none); CheckpointError if ``latest`` is bad."""
        pointer = self.checkpoints_path / "latest"
        if not pointer.is_file():
            return None
        name = read_text(pointer).strip()
        if not _CKPT_NAME.fullmatch(name):
            raise CheckpointError(
                f"{pointer} names {name[:80]!r}, which is not a checkpoint of this run"
            )
        path = self.checkpoints_path / name
        if not path.is_dir():
            raise CheckpointError(f"{pointer} names {name!r}, which does not exist")
        return path

    def save_checkpoint(self, name: str, arrays: Arrays, state: dict[str, Any]) -> Path:
        """Write a checkpoint atomically, point ``latest`` at it, delete all but ``keep``.

        Args:
            name: Folder name, e.g. from :func:`checkpoint_name`.
            arrays: ``{file stem: {array name: array}}``, each saved as ``stem.npz``.
            state: JSON-serialisable counters, RNG states and metadata.

        """
        if not _CKPT_NAME.fullmatch(name):
            raise ValueError(f"bad checkpoint name {name!r}")
        self.create()
        final = self.checkpoints_path / name
        tmp = self.checkpoints_path / f".{name}.tmp{os.getpid()}"
        remove(tmp)
        with space_checked(f"checkpoint {name}", tmp):
            tmp.mkdir()
            for stem, group in arrays.items():
                with open(tmp / f"{stem}.npz", "wb") as f:
                    np.savez(f, **group)
                    f.flush()
                    os.fsync(f.fileno())
            state_bytes = json.dumps({"format_version": FORMAT_VERSION, **state}).encode()
            fsync_write(tmp / "state.json", state_bytes)
            write_manifest(tmp)
            if final.exists():  # only a rewrite of the same point; `latest` names another
                shutil.rmtree(final)
            os.replace(tmp, final)
        write_atomic(self.checkpoints_path / "latest", name.encode())
        done = sorted(p for p in self.checkpoints_path.glob("ckpt-*") if p.is_dir())
        for old in done[: -self.keep]:
            if old.name != name:
                remove(old)
        for stale in self.checkpoints_path.glob(".ckpt-*.tmp*"):
            if not stale.name.endswith(f".tmp{os.getpid()}"):
                remove(stale)
        return final

    @staticmethod
    def load_checkpoint(path: str | Path) -> tuple[Arrays, dict[str, Any]]:
        """Read and verify a checkpoint folder (CheckpointError if it is bad).

        The manifest must list every file of the folder with its size and
        SHA-256; ``state.json`` must be a JSON object of this format version.
        Arrays load without pickle.
        """
        path = Path(path)
        check_manifest(path)
        state = read_json(path / "state.json")
        if not isinstance(state, dict):
            raise CheckpointError(f"{path / 'state.json'} is corrupt: not a JSON object")
        if state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format {state.get('format_version')}, "
                f"this catchrl reads {FORMAT_VERSION}"
            )
        arrays: Arrays = {}
        for f in sorted(path.glob("*.npz")):
            try:
                with np.load(f, allow_pickle=False) as data:
                    arrays[f.stem] = {k: data[k] for k in data.files}
            except (zipfile.BadZipFile, ValueError, OSError) as e:
                raise CheckpointError(f"checkpoint file {f} cannot be read: {e}") from e
        return arrays, state


def _describe(holder: str) -> str:
    """``pid N on host H`` from a lock file's text (or what it holds)."""
    try:
        info = json.loads(holder)
        return f"pid {info['pid']} on host {info['host']}"
    except (ValueError, KeyError, TypeError):
        return "another process"
