"""The run directory of every trainer: one writer, atomic files, verified checkpoints.

``RUN/``: ``.lock`` (the writer's pid and host), ``config.toml`` (supervised: ``config.json``),
``metrics.tsv``, ``tb/``, ``checkpoints/ckpt-*/`` (``*.npz``, ``state.json``, ``manifest.json``;
names sort by time), ``evals.json``, ``eval.json``, ``best.json``, ``best.*``, ``model.*``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from catchrl.agents.npz import load_npz
from catchrl.errors import CheckpointError, DiskFullError, RunDirError, RunDirLocked

FORMAT_VERSION = 3
METRIC_COLUMNS = tuple(
    "game loss wins epsilon steps steps_per_s win_rate_100 wall_time reward".split()
)
"""An RL run's ``metrics.tsv`` columns: the book's (game, loss, cumulative wins) first."""
_ROW_FORMATS = ("{}", "{:.6g}", "{}", "{:.5g}", "{}", "{:.1f}", "{:.4f}", "{:.2f}", "{:g}")
_RUN_MARKERS = ("config.toml", "config.json", "metrics.tsv", "checkpoints")
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
Arrays = dict[str, dict[str, np.ndarray]]


def metrics_row(*cells: float) -> str:
    """One ``metrics.tsv`` line from the values of :data:`METRIC_COLUMNS`, in order."""
    return "\t".join(f.format(c) for f, c in zip(_ROW_FORMATS, cells, strict=True)) + "\n"


class RunDir:
    """Paths, lock and atomic I/O of one run directory; ``keep``: complete checkpoints kept."""

    def __init__(self, path: str | Path, keep: int = 1) -> None:
        if str(path).strip() == "":
            raise RunDirError("--run-dir is empty; give a folder name")
        self.path = Path(path)
        try:
            if self.path.exists() and not self.path.is_dir():
                raise RunDirError(f"run directory {str(self.path)!r} is a file, not a folder")
        except OSError as e:  # a name too long, a loop of links
            raise RunDirError(f"run directory {str(self.path)[:100]!r}: {e.strerror}") from None
        self.keep = max(int(keep), 1)
        self.config_path = self.path / "config.toml"
        self.metrics_path = self.path / "metrics.tsv"
        self.tb_path = self.path / "tb"
        self.checkpoints_path = self.path / "checkpoints"
        self.lock_path = self.path / ".lock"
        self._lock_fd: int | None = None
        self._created = False  # taking the lock made the folder: remove it if it stays empty

    def create(self) -> None:
        """Make the folder and its sub-folders."""
        with space_checked(str(self.path)):
            self.checkpoints_path.mkdir(parents=True, exist_ok=True)
            self.tb_path.mkdir(exist_ok=True)

    def is_run(self) -> bool:
        """Whether the folder holds (part of) a catchrl run."""
        return any((self.path / name).exists() for name in _RUN_MARKERS)

    def check_fresh(self) -> None:
        """Refuse to start a new run in a folder holding a run or anything else."""
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

    def acquire_lock(self) -> None:
        """Take the run's lock (creating the folder); RunDirLocked names the holder."""
        if self._lock_fd is not None:
            return
        for folder in (self.checkpoints_path, self.tb_path):
            if folder.is_symlink():
                raise RunDirError(f"{folder} is a symbolic link; a run's files must be its own")
        if not self.path.exists():
            try:
                with space_checked(str(self.path)):
                    self.path.mkdir(parents=True)
            except OSError as e:  # under a file, under /proc, no permission
                what = f"cannot create run directory {str(self.path)!r}: {e.strerror}"
                raise RunDirError(what) from None
            self._created = True
        try:
            while True:
                fd = open_nofollow(self.lock_path, os.O_RDWR | os.O_CREAT)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                    holder = "another process"
                    os.close(fd)
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        holder = "pid {pid} on host {host}".format(**json.loads(text))
                    raise RunDirLocked(
                        f"run directory {str(self.path)!r} is in use by {holder}; "
                        "wait for it to finish or stop it first"
                    ) from None
                # The holder before us may have removed the file after we opened it.
                with contextlib.suppress(FileNotFoundError):
                    if os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino:
                        break
                os.close(fd)
            self._lock_fd = fd
            with space_checked(str(self.lock_path)):
                os.ftruncate(fd, 0)
                holder = {"pid": os.getpid(), "host": socket.gethostname()}
                os.pwrite(fd, json.dumps(holder).encode(), 0)
        except BaseException:
            self.release_lock()
            raise
        for folder in (self.path, self.checkpoints_path):  # what writers that died left
            for p in folder.glob(".*.tmp[0-9]*"):  # write_file_atomic's hidden temporaries
                remove(p)

    def release_lock(self) -> None:
        """Drop the lock (and the folder, if taking the lock created it and it stayed empty)."""
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None
        if self._created:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only if empty
            self._created = False

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDir]:
        """Hold the run's lock for a ``with`` block."""
        self.acquire_lock()
        try:
            yield self
        finally:
            self.release_lock()

    def write_json(self, name: str, data: Any) -> None:
        """Write ``RUN/name`` as JSON, atomically."""
        self.write_file_atomic(name, lambda p: p.write_text(json.dumps(data, indent=1)))

    def write_file_atomic(self, name: str, write: Callable[[Path], Any]) -> Path:
        """Write ``RUN/name`` through ``write(tmp_path)`` (a Keras or SB3 saver), then rename."""
        self.create()
        final = self.path / name
        stem, dot, ext = final.name.partition(".")
        tmp = final.with_name(f".{stem}.tmp{os.getpid()}{dot}{ext}")  # hidden, the same suffix
        remove(tmp)
        with space_checked(str(final), tmp):
            write(tmp)
            _fsync(tmp)
            os.replace(tmp, final)
        return final

    def cut_metrics(self, size: int) -> None:
        """Cut ``metrics.tsv`` back to the ``size`` bytes a checkpoint recorded (0: none yet)."""
        have = self.metrics_path.stat().st_size if self.metrics_path.exists() else 0
        if have < size:
            raise RunDirError(
                f"{self.metrics_path} has {have} bytes but the checkpoint recorded {size}: it "
                "was truncated or replaced, so the run's record is incomplete"
            )
        if have > size:
            with os.fdopen(open_nofollow(self.metrics_path, os.O_WRONLY), "wb") as f:
                f.truncate(size)

    def open_metrics(self) -> IO[str]:
        """Open ``metrics.tsv`` for appending (a header if new)."""
        fd = open_nofollow(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        f = os.fdopen(fd, "a", buffering=1, encoding="utf-8")
        if os.fstat(fd).st_size == 0:
            f.write("\t".join(METRIC_COLUMNS) + "\n")
        return f

    def read_metrics(self) -> dict[str, np.ndarray]:
        """``metrics.tsv`` as one float array per column."""
        lines = read_text(self.metrics_path).splitlines()
        try:
            header, *rows = [line.split("\t") for line in lines if line.strip()]
            table = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
        except ValueError as e:  # no header, a short row, a cell not a number
            raise RunDirError(f"{self.metrics_path} is empty or malformed: {e}") from e
        return {name: table[:, i] for i, name in enumerate(header)}

    def checkpoints(self) -> list[Path]:
        """The complete checkpoints, oldest first (a half-written one is a hidden temp folder)."""
        return sorted(p for p in self.checkpoints_path.glob("ckpt-*") if p.is_dir())

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (None: none yet)."""
        return (self.checkpoints() or [None])[-1]

    def save_checkpoint(self, name: str, arrays: Arrays, state: dict[str, Any]) -> Path:
        """Write checkpoint ``name``: ``{stem: {name: array}}`` as npz, ``state`` as JSON."""

        def write(folder: Path) -> None:
            folder.mkdir()
            for stem, group in arrays.items():
                np.savez(folder / f"{stem}.npz", **group)
            state_text = json.dumps({"format_version": FORMAT_VERSION, **state}, default=float)
            (folder / "state.json").write_text(state_text, encoding="utf-8")
            (folder / "manifest.json").write_text(json.dumps(_manifest(folder), indent=1))
            for p in folder.iterdir():
                _fsync(p)
            remove(self.checkpoints_path / name)  # only a rewrite of the same point

        path = self.write_file_atomic(f"checkpoints/{name}", write)
        for old in self.checkpoints()[: -self.keep]:
            remove(old)
        return path

    @staticmethod
    def load_checkpoint(path: str | Path) -> tuple[Arrays, dict[str, Any]]:
        """Read a checkpoint folder, checked against its manifest; arrays load without pickle."""
        path = Path(path)
        if not (path / "manifest.json").is_file():
            raise CheckpointError(f"{path} is not a checkpoint (no manifest.json)")
        if read_json(path / "manifest.json") != _manifest(path):
            raise CheckpointError(
                f"checkpoint {path} is incomplete, truncated or corrupt: its files are not those "
                "of its manifest.json (a JSON object of each file's size and SHA-256)"
            )
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
                arrays[f.stem] = load_npz(f)
            except ValueError as e:  # names the file
                raise CheckpointError(f"checkpoint file {e}") from e
            except OSError as e:
                raise CheckpointError(f"checkpoint file {f} cannot be read: {e}") from e
        return arrays, state


def read_text(path: Path) -> str:
    """A small text file of the run as UTF-8; RunDirError if it is not."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RunDirError(f"{path} is not UTF-8 text (byte {e.start}): corrupt?") from e
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror}") from e


def read_json(path: Path) -> Any:
    """``path`` parsed as JSON; CheckpointError if it is not UTF-8 JSON."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is corrupt: {e}") from e


def remove(path: Path) -> None:
    """Remove a file or a folder (a link itself, never its target); no error if absent."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def space_checked(what: str, *cleanup: Path) -> Iterator[None]:
    """Turn a full disk into DiskFullError, removing ``cleanup`` (what was half written)."""
    try:
        yield
    except OSError as e:
        if e.errno not in NO_SPACE:
            raise
        for path in cleanup:
            remove(path)
        raise DiskFullError(
            f"no space left on the device while writing {what}; free some space and "
            "continue with --resume (the last complete checkpoint is kept)"
        ) from e


def open_nofollow(path: Path, flags: int) -> int:
    """``os.open`` refusing a symbolic link at ``path``; RunDirError names the file."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno in NO_SPACE:
            raise
        if e.errno == errno.ELOOP:
            raise RunDirError(f"{path} is a symbolic link; a run's files must be its own") from e
        raise RunDirError(f"cannot open {path}: {e.strerror}") from e


def _fsync(path: Path) -> None:
    """Flush a written file to the disk (a folder a saver wrote is left as it is)."""
    if path.is_file():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """Each file's size and SHA-256 (but the manifest's own)."""
    files = {}
    for p in sorted(folder.iterdir()):
        if p.name != "manifest.json":
            with open(p, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            files[p.name] = {"bytes": p.stat().st_size, "sha256": digest}
    return files
