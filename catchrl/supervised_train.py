"""The supervised trainer: Keras ``fit`` in a run directory; checkpoints resume exactly."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from catchrl.errors import RunDirError
from catchrl.rundir import RunDir, read_json
from catchrl.supervised import train as tasks
from catchrl.supervised.datasets import load_dataset

RESUMABLE = ("epochs", "patience")
"""Settings a resumed run may change (train longer, wait longer)."""
COUNTERS = {
    "early_stopping": ("wait", "best", "best_epoch"),
    "plateau": ("wait", "best", "cooldown_counter"),
}
"""The callbacks' counters a checkpoint keeps (a resumed run stops as the straight one)."""


@dataclass
class TrainOutcome:
    """What :func:`train` returns."""

    model: keras.Model
    history: dict[str, list[float]]
    device: dict[str, Any]


def _numbered(arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{i:04d}": np.asarray(a) for i, a in enumerate(arrays)}


def _unnumbered(group: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [group[k] for k in sorted(group)]


class _Checkpoints(keras.callbacks.Callback):
    """After each epoch (and after the callbacks it saves): best.keras and a checkpoint."""

    def __init__(self, rd: RunDir, counted: dict[str, Any], restored: Any = None) -> None:
        super().__init__()
        self.rd, self.counted, self.restored = rd, counted, restored

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.restored is None:  # the other callbacks have just reset their counters
            return
        arrays, state = self.restored
        for key, callback in self.counted.items():
            for name in COUNTERS[key]:
                setattr(callback, name, state[key][name])
        if "early_best" in arrays:
            self.counted["early_stopping"].best_weights = _unnumbered(arrays["early_best"])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        early_stopping = self.counted["early_stopping"]
        if early_stopping.wait == 0:  # a new best
            self.rd.write_file_atomic("best.keras", self.model.save)
        optimizer = [keras.ops.convert_to_numpy(v.value) for v in self.model.optimizer.variables]
        arrays = {"model": _numbered(self.model.get_weights()), "optimizer": _numbered(optimizer)}
        if early_stopping.best_weights is not None:
            arrays["early_best"] = _numbered(early_stopping.best_weights)
        state = {"epoch": epoch + 1, "metrics_bytes": self.rd.metrics_path.stat().st_size}
        for key, callback in self.counted.items():
            state[key] = {name: getattr(callback, name) for name in COUNTERS[key]}
        self.rd.save_checkpoint(f"ckpt-e{epoch + 1:06d}", arrays, state)


def train(
    cfg: tasks.SupervisedConfig,
    run_dir: str | os.PathLike[str],
    resume: bool = False,
    verbose: int = 2,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainOutcome:
    """Train one model into ``run_dir``; ``resume``: from its latest checkpoint."""
    rd = RunDir(run_dir)
    with rd.lock():  # a folder the lock made goes again if the data is refused
        ds = load_dataset(cfg.data, kind=tasks.DATA_KINDS[cfg.task])
        device = tasks.setup_device()
        keras.utils.set_random_seed(cfg.seed)
        batch = cfg.batch_size or tasks.CPU_BATCH[cfg.task] * device["batch_scale"]
        data, n_train = tasks.fit_data(cfg, ds, batch)
        record = {"config": dataclasses.asdict(cfg), "dataset": dataclasses.asdict(ds.config)}
        if resume and rd.is_run():  # refuse another config (but the RESUMABLE settings)
            stored = read_json(rd.path / "config.json")
            stored = stored.get("config", {}) if isinstance(stored, dict) else {}
            new = record["config"]
            diff = sorted(k for k in new if k not in RESUMABLE and stored.get(k) != new[k])
            if diff:
                raise RunDirError(
                    f"{rd.path}: cannot resume with another configuration "
                    f"(differs in {', '.join(diff)})"
                )
        else:
            rd.check_fresh()
        rd.write_json("config.json", record)
        model = tasks.build_model(cfg, ds)
        latest = rd.latest_checkpoint() if resume else None
        restored, initial_epoch = None, 0
        if latest is not None:
            restored = RunDir.load_checkpoint(latest)
            model.set_weights(_unnumbered(restored[0]["model"]))
            model.optimizer.build(model.trainable_variables)
            model.optimizer.set_weights(_unnumbered(restored[0]["optimizer"]))
            rd.cut_metrics(int(restored[1]["metrics_bytes"]))
            initial_epoch = int(restored[1]["epoch"])
        else:  # rows of a first epoch that never reached its checkpoint
            rd.metrics_path.unlink(missing_ok=True)
        monitor = "val_loss" if data["validation_data"] is not None else "loss"
        counted = {
            "early_stopping": keras.callbacks.EarlyStopping(
                monitor=monitor, patience=cfg.patience, restore_best_weights=True
            ),
            "plateau": keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.3, patience=max(cfg.patience // 2, 1), min_lr=1e-5
            ),
        }
        # Keras' TensorBoard callback writes through tf.summary: drop the TensorFlow-free
        # stub set for SB3 runs (catchrl.monitor), which TensorBoard resolves at first write.
        sys.modules.pop("tensorboard.compat.notf", None)
        history = model.fit(
            **data,
            epochs=cfg.epochs,
            initial_epoch=initial_epoch,
            callbacks=[
                tasks.Throughput(n_train),
                *counted.values(),
                keras.callbacks.TensorBoard(str(rd.tb_path), profile_batch=0),
                keras.callbacks.CSVLogger(
                    str(rd.metrics_path), separator="\t", append=rd.metrics_path.exists()
                ),
                _Checkpoints(rd, counted, restored),  # after the row is written
                *(callbacks or ()),
            ],
            verbose=verbose,
        )
        rd.write_file_atomic("model.keras", model.save)
    logged = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return TrainOutcome(model, logged, device)
