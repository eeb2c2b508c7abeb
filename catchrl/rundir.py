"""A run directory: lock, config, metrics, TensorBoard events, checkpoints, models.

Layout::

    RUN/
      .lock                held (flock) by the one process writing the run
      config.toml          the full config (reload with --config)
      metrics.tsv          one row per game (the book's columns first)
      tb/                  TensorBoard events
      checkpoints/
        latest             name of the newest complete checkpoint
        ckpt-g00000200-s000000006600/   arrays (*.npz), state.json, manifest.json
      evals.json           validation evaluations made during training
      best.* / model.*     the best-validation and the final model

**One writer.** :meth:`RunDir.lock` takes an exclusive ``flock`` on
``RUN/.lock`` and writes the holder's pid and host into it. A second process
is refused with :class:`~catchrl.errors.RunDirLocked` naming the holder. The
kernel drops the lock when its process dies (``kill -9`` included), so a stale
lock file is simply taken over.

**Nothing half-written.** A checkpoint is written into a temporary folder,
every file flushed to disk, renamed into place and only then named in
``latest``: a crash at any moment leaves the previous checkpoint complete.
``manifest.json`` records every file's size and SHA-256 and must list every
file of the folder; ``latest`` must name a checkpoint folder of this run. A
full disk raises :class:`~catchrl.errors.DiskFullError` after removing what it
half wrote; temporary files of dead writers are removed when the lock is taken.

This module is part of the foundation layer (stdlib + numpy only): the app and
the supervised trainers both use it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.errors import CheckpointError, DiskFullError, RunDirError, RunDirLocked

__all__ = [
    "METRIC_COLUMNS",
    "CheckpointError",
    "RunDir",
    "balls_caught",
    "checkpoint_name",
    "metrics_row",
    "read_text",
]

FORMAT_VERSION = 2  # 2: checkpoints of the one run loop (mid-game, learner state apart)
# The book's TSV columns (game, loss, cumulative wins) first, then ours.
METRIC_COLUMNS = (
    "game",
    "loss",
    "wins",
    "epsilon",
    "steps",
    "steps_per_s",
    "win_rate_100",
    "wall_time",
    "reward",
)
_CKPT_NAME = re.compile(r"ckpt-[A-Za-z0-9-]{1,64}")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# What a run directory may hold; a fresh run refuses a folder with anything else.
_RUN_MARKERS = ("config.toml", "metrics.tsv", "checkpoints")


def balls_caught(reward: float, balls_per_game: int) -> int:
    """Balls caught in a finished game from its total reward (+1 per catch, -1 per miss)."""
    return int((reward + balls_per_game) // 2)


def metrics_row(
    game: int,
    loss: float,
    wins: int,
    epsilon: float,
    steps: int,
    steps_per_s: float,
    win_rate_100: float,
    wall_time: float,
    reward: float,
) -> str:
    """One ``metrics.tsv`` line, in :data:`METRIC_COLUMNS` order."""
    cells = (
        game,
        f"{loss:.6g}",
        wins,
        f"{epsilon:.5g}",
        steps,
        f"{steps_per_s:.1f}",
        f"{win_rate_100:.4f}",
        f"{wall_time:.2f}",
        f"{reward:g}",
    )
    return "\t".join(map(str, cells)) + "\n"


def checkpoint_name(games: int, steps: int) -> str:
    """The folder name of a checkpoint taken after ``games`` games and ``steps`` env steps.

    Names sort in the order they were taken; a mid-game checkpoint never
    reuses the name of the one taken at the last game boundary.
    """
    return f"ckpt-g{games:08d}-s{steps:012d}"


def read_text(path: Path, what: str | None = None) -> str:
    """A small text file of the run as UTF-8; a clear :class:`RunDirError` if it is not."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RunDirError(f"{what or path} is not UTF-8 text (byte {e.start}): corrupt?") from e
    except OSError as e:
        raise RunDirError(f"cannot read {what or path}: {e.strerror}") from e


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is corrupt: {e}") from e


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def _space_checked(what: str, *cleanup: Path) -> Iterator[None]:
    """Turn a full disk into :class:`DiskFullError`, removing what was half written."""
    try:
        yield
    except OSError as e:
        if e.errno not in _NO_SPACE:
            raise
        for path in cleanup:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise DiskFullError(
            f"no space left on the device while writing {what}; free some space and "
            "continue with --resume (the last complete checkpoint is kept)"
        ) from e


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` beside, flush, then rename: readers see the old or the new file."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with _space_checked(str(path), tmp):
        _fsync_write(tmp, data)
        os.replace(tmp, path)


class RunDir:
    """Paths, lock and atomic I/O of one run directory.

    Args:
        path: The folder (created when the lock is first taken or on first write).
        keep: Complete checkpoints to keep (older ones are deleted).

    Raises:
        RunDirError: ``path`` is empty or names a file.

    """

    def __init__(self, path: str | Path, keep: int = 2) -> None:
        if str(path).strip() == "":
            raise RunDirError("the run directory is an empty path; give a folder name")
        self.path = Path(path)
        self.keep = keep
        self._lock_fd: int | None = None
        self._created = False
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"run directory {str(self.path)!r} is a file, not a folder")

    config_path = property(lambda self: self.path / "config.toml")
    metrics_path = property(lambda self: self.path / "metrics.tsv")
    tb_path = property(lambda self: self.path / "tb")
    checkpoints_path = property(lambda self: self.path / "checkpoints")
    lock_path = property(lambda self: self.path / ".lock")

    @property
    def model_path(self) -> Path:
        """The final Keras model (``model.keras``)."""
        return self.path / "model.keras"

    def create(self) -> None:
        """Make the folder and its sub-folders."""
        with _space_checked(str(self.path)):
            self.checkpoints_path.mkdir(parents=True, exist_ok=True)
            self.tb_path.mkdir(exist_ok=True)

    # -- what the folder holds ------------------------------------------------

    def is_run(self) -> bool:
        """Whether the folder holds (part of) a catchrl run."""
        return any((self.path / name).exists() for name in _RUN_MARKERS)

    def check_fresh(self) -> None:
        """Refuse to start a new run here if the folder holds a run or anything else.

        Raises:
            RunDirError: A run is already there (resume it), or the folder has
                files that are not a catchrl run's.

        """
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
        """Take the run's lock (creating the folder if needed); clean dead writers' files.

        Raises:
            RunDirLocked: Another live process holds it (its pid and host are named).

        """
        if self._lock_fd is not None:
            return
        if not self.path.exists():
            with _space_checked(str(self.path)):
                self.path.mkdir(parents=True)
            self._created = True
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                self._undo_create()
                raise RunDirError(f"cannot lock {self.path}: {e.strerror}") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                os.close(fd)
                raise RunDirLocked(
                    f"run directory {str(self.path)!r} is in use by {_describe(holder)}; "
                    "wait for it to finish or stop it first"
                ) from None
            # The holder before us may have removed the file after we opened it.
            try:
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
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if not re.search(r"\.tmp\d+(\.[a-z]+)?$", p.name):
                    continue
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)

    # -- small files ------------------------------------------------------------

    def write_config(self, toml_text: str) -> None:
        """Write ``config.toml`` atomically."""
        self.create()
        write_atomic(self.config_path, toml_text.encode())

    def write_json(self, name: str, data: Any) -> None:
        """Write ``RUN/name`` as JSON atomically (evaluation results)."""
        self.create()
        write_atomic(self.path / name, json.dumps(data, indent=1).encode())

    def read_json(self, name: str) -> Any:
        """``RUN/name`` parsed as JSON; a clear error if it is not UTF-8 JSON."""
        return _read_json(self.path / name)

    def write_file_atomic(self, name: str, write: Any) -> Path:
        """Write ``RUN/name`` through ``write(tmp_path)``, then rename it into place.

        For files written by other libraries (a Keras or SB3 model): a crash
        or a full disk never leaves a half-written ``name``.
        """
        final = self.path / name
        stem, dot, ext = name.partition(".")
        tmp = self.path / f"{stem}.tmp{os.getpid()}{dot}{ext}"
        with _space_checked(str(final), tmp):
            write(tmp)
            os.replace(tmp, final)
        return final

    # -- metrics -------------------------------------------------------------

    def open_metrics(self, truncate_at: int | None = None) -> Any:
        """Open ``metrics.tsv`` for appending (header written if new).

        Args:
            truncate_at: On resume, cut the file back to this byte size first, so
                rows written after the checkpoint are not duplicated.

        Raises:
            RunDirError: The file is shorter than ``truncate_at`` (it was cut or
                edited after the checkpoint: the run's record would have a hole).

        """
        path = self.metrics_path
        if truncate_at is not None:
            size = path.stat().st_size if path.exists() else 0
            if size < truncate_at:
                raise RunDirError(
                    f"{path} has {size} bytes but the checkpoint recorded {truncate_at}: it "
                    "was truncated or replaced, so the run's per-game record is incomplete"
                )
            with open(path, "r+b") as f:
                f.truncate(truncate_at)
        new = not path.exists() or path.stat().st_size == 0
        f = open(path, "a", buffering=1, encoding="utf-8")
        if new:
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
        """The newest complete checkpoint, or None if there is none.

        Raises:
            CheckpointError: ``latest`` is unreadable or names something that is
                not a checkpoint folder of this run.

        """
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

    def save_checkpoint(
        self, name: str, arrays: dict[str, dict[str, np.ndarray]], state: dict[str, Any]
    ) -> Path:
        """Write a checkpoint atomically and point ``latest`` at it.

        Args:
            name: Folder name, e.g. from :func:`checkpoint_name`.
            arrays: ``{file stem: {array name: array}}``, each saved as ``stem.npz``.
            state: JSON-serialisable counters, RNG states and metadata.

        Raises:
            DiskFullError: The disk filled up; the previous checkpoint is intact.

        """
        if not _CKPT_NAME.fullmatch(name):
            raise ValueError(f"bad checkpoint name {name!r}")
        self.create()
        final = self.checkpoints_path / name
        tmp = self.checkpoints_path / f".{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        with _space_checked(f"checkpoint {name}", tmp):
            tmp.mkdir()
            for stem, group in arrays.items():
                with open(tmp / f"{stem}.npz", "wb") as f:
                    np.savez(f, **group)
                    f.flush()
                    os.fsync(f.fileno())
            state_bytes = json.dumps({"format_version": FORMAT_VERSION, **state}).encode()
            _fsync_write(tmp / "state.json", state_bytes)
            manifest = {
                p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                for p in sorted(tmp.iterdir())
            }
            _fsync_write(tmp / "manifest.json", json.dumps(manifest, indent=1).encode())
            if final.exists():  # only a rewrite of the same point; `latest` names another
                shutil.rmtree(final)
            os.replace(tmp, final)
        write_atomic(self.checkpoints_path / "latest", name.encode())
        self._prune(keep_name=name)
        return final

    def _prune(self, keep_name: str) -> None:
        done = sorted(p for p in self.checkpoints_path.glob("ckpt-*") if p.is_dir())
        for old in done[: -self.keep]:
            if old.name != keep_name:
                shutil.rmtree(old, ignore_errors=True)
        for stale in self.checkpoints_path.glob(".ckpt-*.tmp*"):
            if not stale.name.endswith(f".tmp{os.getpid()}"):
                shutil.rmtree(stale, ignore_errors=True)

    @staticmethod
    def load_checkpoint(
        path: str | Path,
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """Read and verify a checkpoint folder; raise :class:`CheckpointError` if it is bad.

        The manifest must be a JSON object listing every file of the folder
        (``state.json`` included) with its size and SHA-256; ``state.json``
        must be a JSON object of this format version. Arrays load without
        pickle.
        """
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise CheckpointError(f"{path} is not a checkpoint (no manifest.json)")
        manifest = _read_json(manifest_path)
        files = {p.name for p in path.iterdir() if p.name != "manifest.json"}
        if not isinstance(manifest, dict) or not manifest:
            raise CheckpointError(f"{manifest_path} is corrupt: not a non-empty JSON object")
        if "state.json" not in manifest or set(manifest) != files:
            missing = sorted(files ^ set(manifest))
            raise CheckpointError(
                f"{manifest_path} is incomplete or corrupt: it does not match the folder's "
                f"files ({', '.join(missing) or 'state.json'})"
            )
        for fname, meta in manifest.items():
            f = path / fname
            if not (isinstance(meta, dict) and {"bytes", "sha256"} <= set(meta)):
                raise CheckpointError(f"{manifest_path} is corrupt: bad entry for {fname!r}")
            if f.stat().st_size != meta["bytes"]:
                raise CheckpointError(
                    f"checkpoint file {f} is truncated or changed "
                    f"({f.stat().st_size} bytes, expected {meta['bytes']})"
                )
            if _sha256(f) != meta["sha256"]:
                raise CheckpointError(f"checkpoint file {f} is corrupt (checksum mismatch)")
        state = _read_json(path / "state.json")
        if not isinstance(state, dict):
            raise CheckpointError(f"{path / 'state.json'} is corrupt: not a JSON object")
        if state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format {state.get('format_version')}, "
                f"this catchrl reads {FORMAT_VERSION}"
            )
        arrays: dict[str, dict[str, np.ndarray]] = {}
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
