"""Safe file I/O of a run directory: atomic writes, a full disk, links not followed."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from catchrl.errors import CheckpointError, DiskFullError, RunDirError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def read_text(path: Path, what: str | None = None) -> str:
    """A small text file of the run as UTF-8; a clear :class:`RunDirError` if it is not."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RunDirError(f"{what or path} is not UTF-8 text (byte {e.start}): corrupt?") from e
    except OSError as e:
        raise RunDirError(f"cannot read {what or path}: {e.strerror}") from e


def read_json(path: Path) -> Any:
    """``path`` parsed as JSON; CheckpointError if it is not UTF-8 JSON."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is corrupt: {e}") from e


def sha256(path: Path) -> str:
    """The file's SHA-256 in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to the disk."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def remove(path: Path) -> None:
    """Remove a file or a folder (a link itself, never its target); no error if absent."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def space_checked(what: str, *cleanup: Path) -> Iterator[None]:
    """Turn a full disk into :class:`DiskFullError`, removing what was half written."""
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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` beside, flush, then rename: readers see the old or the new file."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with space_checked(str(path), tmp):
        fsync_write(tmp, data)
        os.replace(tmp, path)


def open_nofollow(path: Path, flags: int) -> int:
    """``os.open`` refusing a symbolic link at ``path`` (RunDirError naming it)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RunDirError(f"{path} is a symbolic link; a run's files must be its own") from e
        raise


def write_manifest(folder: Path) -> None:
    """Write ``folder/manifest.json``: every file's size and SHA-256."""
    manifest = {
        p.name: {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in sorted(folder.iterdir())
    }
    fsync_write(folder / "manifest.json", json.dumps(manifest, indent=1).encode())


def check_manifest(path: Path) -> None:
    """Check ``path/manifest.json`` against every file of ``path`` (``state.json`` too).

    Raises:
        CheckpointError: A file is missing, extra, truncated or corrupt.

    """
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise CheckpointError(f"{path} is not a checkpoint (no manifest.json)")
    manifest = read_json(manifest_path)
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
        if sha256(f) != meta["sha256"]:
            raise CheckpointError(f"checkpoint file {f} is corrupt (checksum mismatch)")
