"""A run directory: config, metrics, TensorBoard events, checkpoints, final model.

Layout::

    RUN/
      config.toml          the full config (reload with --config)
      metrics.tsv          one row per game (the book's columns first)
      tb/                  TensorBoard events
      checkpoints/
        latest             name of the newest complete checkpoint
        ckpt-00000200/     arrays (*.npz), state.json, manifest.json
      model.keras          the final Q-network (Keras format)

A checkpoint is written into a temporary folder, every file flushed to disk,
then renamed into place and only then named in ``latest``: a crash or
``kill -9`` at any moment leaves the previous checkpoint complete and loadable.
``manifest.json`` records each file's size and SHA-256; a checkpoint whose
files do not match is rejected as corrupt instead of being half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METRIC_COLUMNS", "CheckpointError", "RunDir", "balls_caught", "metrics_row"]

FORMAT_VERSION = 1
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


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or made for another setup."""


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


def _replace_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    _fsync_write(tmp, text.encode())
    os.replace(tmp, path)


class RunDir:
    """Paths and atomic I/O of one run directory.

    Args:
        path: The folder (created on first write).
        keep: Complete checkpoints to keep (older ones are deleted).

    """

    def __init__(self, path: str | Path, keep: int = 2) -> None:
        self.path = Path(path)
        self.keep = keep
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(f"run directory {str(self.path)!r} is a file, not a folder")

    config_path = property(lambda self: self.path / "config.toml")
    metrics_path = property(lambda self: self.path / "metrics.tsv")
    tb_path = property(lambda self: self.path / "tb")
    model_path = property(lambda self: self.path / "model.keras")
    checkpoints_path = property(lambda self: self.path / "checkpoints")

    def create(self) -> None:
        """Make the folder and its sub-folders."""
        self.checkpoints_path.mkdir(parents=True, exist_ok=True)
        self.tb_path.mkdir(exist_ok=True)

    def write_config(self, toml_text: str) -> None:
        """Write ``config.toml`` atomically."""
        self.create()
        _replace_atomic(self.config_path, toml_text)

    def write_json(self, name: str, data: Any) -> None:
        """Write ``RUN/name`` as JSON atomically (evaluation results)."""
        self.create()
        _replace_atomic(self.path / name, json.dumps(data, indent=1))

    # -- metrics -------------------------------------------------------------

    def open_metrics(self, truncate_at: int | None = None) -> Any:
        """Open ``metrics.tsv`` for appending (header written if new).

        Args:
            truncate_at: On resume, cut the file back to this byte size first, so
                rows written after the checkpoint are not duplicated.

        """
        path = self.metrics_path
        if truncate_at is not None and path.exists():
            with open(path, "r+b") as f:
                f.truncate(truncate_at)
        new = not path.exists() or path.stat().st_size == 0
        f = open(path, "a", buffering=1)
        if new:
            f.write("\t".join(METRIC_COLUMNS) + "\n")
        return f

    def read_metrics(self) -> dict[str, np.ndarray]:
        """``metrics.tsv`` as one float array per column."""
        if not self.metrics_path.is_file():
            raise CheckpointError(f"no metrics.tsv in {str(self.path)!r}")
        lines = self.metrics_path.read_text().splitlines()
        header = lines[0].split("\t")
        rows = [line.split("\t") for line in lines[1:] if line.strip()]
        table = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
        return {name: table[:, i] for i, name in enumerate(header)}

    # -- checkpoints ---------------------------------------------------------

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint, or None if there is none."""
        pointer = self.checkpoints_path / "latest"
        if not pointer.is_file():
            return None
        path = self.checkpoints_path / pointer.read_text().strip()
        if not path.is_dir():
            raise CheckpointError(f"{pointer} names {path.name!r}, which does not exist")
        return path

    def save_checkpoint(
        self, name: str, arrays: dict[str, dict[str, np.ndarray]], state: dict[str, Any]
    ) -> Path:
        """Write a checkpoint atomically and point ``latest`` at it.

        Args:
            name: Folder name, e.g. ``ckpt-00000200``.
            arrays: ``{file stem: {array name: array}}``, each saved as ``stem.npz``.
            state: JSON-serialisable counters, RNG states and metadata.

        """
        self.create()
        final = self.checkpoints_path / name
        tmp = self.checkpoints_path / f".{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for stem, group in arrays.items():
            with open(tmp / f"{stem}.npz", "wb") as f:
                np.savez(f, **group)
                f.flush()
                os.fsync(f.fileno())
        _fsync_write(
            tmp / "state.json", json.dumps({"format_version": FORMAT_VERSION, **state}).encode()
        )
        manifest = {
            p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(tmp.iterdir())
        }
        _fsync_write(tmp / "manifest.json", json.dumps(manifest, indent=1).encode())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _replace_atomic(self.checkpoints_path / "latest", name)
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
        """Read and verify a checkpoint folder; raise :class:`CheckpointError` if it is bad."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise CheckpointError(f"{path} is not a checkpoint (no manifest.json)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{manifest_path} is corrupt: {e}") from e
        for fname, meta in manifest.items():
            f = path / fname
            if not f.is_file():
                raise CheckpointError(f"checkpoint {path.name} is missing {fname}")
            if f.stat().st_size != meta["bytes"]:
                raise CheckpointError(
                    f"checkpoint file {f} is truncated or changed "
                    f"({f.stat().st_size} bytes, expected {meta['bytes']})"
                )
            if _sha256(f) != meta["sha256"]:
                raise CheckpointError(f"checkpoint file {f} is corrupt (checksum mismatch)")
        state = json.loads((path / "state.json").read_text())
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
