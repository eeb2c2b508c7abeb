"""Train and evaluate the supervised models with Keras ``fit`` and its callbacks.

A run directory holds::

    config.json       the SupervisedConfig (and the dataset's generating config)
    metrics.tsv       one row per epoch (CSVLogger, tab-separated), with samples_per_s
    tb/               TensorBoard events
    checkpoints/      best.keras (ModelCheckpoint on val_loss), backup/ (BackupAndRestore)

The learning rate drops 3x when ``val_loss`` stalls for ``patience // 2`` epochs
(ReduceLROnPlateau); EarlyStopping restores the best weights.
    model.keras       the final model (best weights: EarlyStopping restores them)

``resume=True`` continues a stopped run from its last finished epoch
(``BackupAndRestore``); the stored config must equal the new one.

Device: with a GPU (``tf.config.list_physical_devices("GPU")``) models are
built under ``mixed_float16`` (output layers stay float32) with 8x larger
batches; otherwise float32 on the CPU. Both feed a prefetching ``tf.data``
pipeline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from catchrl.supervised.datasets import (
    GameDataset,
    frame_stacks,
    load_dataset,
    perception_targets,
    split_games,
    tf_frame_dataset,
)
from catchrl.supervised.imitation import build_imitation_model
from catchrl.supervised.perception import (
    build_perception_model,
    check_arch,
    perceive,
)
from catchrl.supervised.sequence import (
    DEFAULT_WINDOW,
    SEQUENCE_ARCHS,
    build_sequence_model,
    sequence_arrays,
    straight_down,
)

__all__ = [
    "DEFAULT_ARCH",
    "TASKS",
    "RunExistsError",
    "SupervisedConfig",
    "TrainOutcome",
    "evaluate_model",
    "setup_device",
    "train",
]

TASKS = ("perception", "sequence", "imitation")
DEFAULT_ARCH = {"perception": "small", "sequence": "gru", "imitation": "small"}
DATA_KINDS = {
    "perception": ("frames", "expert"),
    "imitation": ("expert", "frames"),
    "sequence": ("trajectories", "frames", "expert"),
}
CPU_BATCH = {"perception": 64, "imitation": 64, "sequence": 256}
GPU_BATCH_SCALE = 8


class RunExistsError(FileExistsError):
    """The run directory already holds a run (and ``resume`` was not asked for)."""


@dataclass(frozen=True)
class SupervisedConfig:
    """One supervised training run.

    Attributes:
        task: ``"perception"``, ``"sequence"`` or ``"imitation"``.
        data: Path of the training ``.npz`` (see :mod:`catchrl.supervised.datasets`).
        arch: Architecture; default per task (:data:`DEFAULT_ARCH`).
        epochs: Most epochs (EarlyStopping may end sooner).
        batch_size: Batch size; ``0`` = automatic (CPU: :data:`CPU_BATCH`,
            GPU: that times :data:`GPU_BATCH_SCALE`).
        learning_rate: Adam's learning rate (3e-3: measured on the small CNN).
        val_fraction: Share of whole games held out for validation.
        patience: EarlyStopping patience in epochs, on ``val_loss``.
        seed: Seed of the split, the shuffle and the weights.
        window: States per sequence input (k).
        landing_weight: Weight of the landing-x MSE next to the catch
            cross-entropy (landing is in world / width units, errors ~0.01).

    """

    task: str
    data: str
    arch: str = ""
    epochs: int = 10
    batch_size: int = 0
    learning_rate: float = 3e-3
    val_fraction: float = 0.1
    patience: int = 5
    seed: int = 0
    window: int = DEFAULT_WINDOW
    landing_weight: float = 100.0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if not self.arch:
            object.__setattr__(self, "arch", DEFAULT_ARCH[self.task])
        if self.task == "sequence":
            if self.arch not in SEQUENCE_ARCHS:
                raise ValueError(
                    f"unknown sequence architecture {self.arch!r}; choose one of {SEQUENCE_ARCHS}"
                )
        else:
            check_arch(self.arch)
        for name in ("epochs", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 0 or self.learning_rate <= 0:
            raise ValueError("batch_size must be >= 0 and learning_rate > 0")


@dataclass
class TrainOutcome:
    """What :func:`train` returns."""

    model: keras.Model
    history: dict[str, list[float]]
    run_dir: Path
    device: dict[str, Any]


def setup_device() -> dict[str, Any]:
    """Pick the device and the precision policy; return a description of both.

    A GPU gets ``mixed_float16`` (build models after this call) and larger
    batches; the CPU keeps ``float32``.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    else:
        keras.mixed_precision.set_global_policy("float32")
    return {
        "gpu": bool(gpus),
        "devices": [d.name for d in gpus] or ["CPU"],
        "policy": keras.mixed_precision.global_policy().name,
        "batch_scale": GPU_BATCH_SCALE if gpus else 1,
    }


class _Throughput(keras.callbacks.Callback):
    """Add ``samples_per_s`` (training samples per second of the epoch) to the epoch logs."""

    def __init__(self, samples_per_epoch: int) -> None:
        super().__init__()
        self.samples = samples_per_epoch
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["samples_per_s"] = self.samples / max(time.perf_counter() - self._start, 1e-9)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# Settings a resumed run may change (train longer, wait longer).
_RESUMABLE = ("epochs", "patience")


def _prepare_run_dir(run_dir: Path, record: dict[str, Any], resume: bool) -> None:
    cfg_path = run_dir / "config.json"
    if cfg_path.exists():
        if not resume:
            raise RunExistsError(
                f"{run_dir} already holds a run; pass resume=True (--resume) "
                "to continue it, or choose another directory"
            )
        stored = json.loads(cfg_path.read_text()).get("config", {})
        diff = sorted(
            k
            for k in record["config"]
            if k not in _RESUMABLE and stored.get(k) != record["config"][k]
        )
        if diff:
            raise ValueError(
                f"{run_dir}: cannot resume with another configuration "
                f"(differs in {', '.join(diff)})"
            )
    elif resume and (run_dir / "checkpoints").exists():
        raise ValueError(f"{run_dir}: no config.json to resume from")
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run_dir / "tb").mkdir(exist_ok=True)
    _write_json(cfg_path, record)


def _pipelines(cfg: SupervisedConfig, ds: GameDataset, batch: int) -> tuple[Any, Any, int, int]:
    """Train and validation ``tf.data`` pipelines and their sizes in samples."""
    import tensorflow as tf

    train_g, val_g = split_games(ds.num_games, cfg.val_fraction, cfg.seed)
    if cfg.task == "sequence":
        x, landing, caught = sequence_arrays(ds, cfg.window)

        def make(games: np.ndarray, shuffle: bool) -> Any:
            xs = x[games].reshape(-1, cfg.window, x.shape[-1])
            ys = {"landing_x": landing[games].reshape(-1, 1), "catch": caught[games].reshape(-1, 1)}
            data = tf.data.Dataset.from_tensor_slices((xs, ys))
            if shuffle:
                data = data.shuffle(len(xs), seed=cfg.seed, reshuffle_each_iteration=True)
            return data.batch(batch).prefetch(tf.data.AUTOTUNE)

        per_game = x.shape[1]
        return (
            make(train_g, True),
            make(val_g, False) if len(val_g) else None,
            len(train_g) * per_game,
            len(val_g) * per_game,
        )
    if cfg.task == "perception":
        targets, last = perception_targets(ds.params, ds.states), None
    else:
        targets, last = ds.oracle_actions.astype(np.int32), ds.steps
    per_game = last or targets.shape[1]
    train = tf_frame_dataset(ds, targets, train_g, last, batch, shuffle=True, seed=cfg.seed)
    val = tf_frame_dataset(ds, targets, val_g, last, batch, shuffle=False) if len(val_g) else None
    return train, val, len(train_g) * per_game, len(val_g) * per_game


def _build(cfg: SupervisedConfig, ds: GameDataset) -> keras.Model:
    opt = keras.optimizers.Adam(cfg.learning_rate)
    if cfg.task == "sequence":
        model = build_sequence_model(cfg.arch, cfg.window)
        model.compile(
            opt,
            loss={"landing_x": "mse", "catch": "binary_crossentropy"},
            loss_weights={"landing_x": cfg.landing_weight, "catch": 1.0},
            metrics={"landing_x": ["mae"], "catch": ["accuracy"]},
        )
        return model
    shape = (ds.config.frame_size, ds.config.frame_size, ds.config.frame_stack)
    if cfg.task == "perception":
        model = build_perception_model(cfg.arch, ds.params, shape)
        model.compile(opt, loss="mse", metrics=["mae"])
    else:
        model = build_imitation_model(cfg.arch, shape)
        model.compile(
            opt,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    return model


def _epochs_done(run: Path) -> int:
    """Epoch rows already in ``metrics.tsv``."""
    path = run / "metrics.tsv"
    if not path.exists():
        return 0
    return max(len(path.read_text().strip().splitlines()) - 1, 0)


def train(
    cfg: SupervisedConfig,
    run_dir: str | os.PathLike[str],
    resume: bool = False,
    verbose: int = 2,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainOutcome:
    """Train one model into ``run_dir`` (layout in the module docstring).

    Args:
        cfg: The run's configuration.
        run_dir: Directory of the run (created).
        resume: Continue the run stored in ``run_dir``: an interrupted run from
            its last finished epoch (``BackupAndRestore``), a finished one from
            its ``model.keras`` (weights and optimizer) up to ``cfg.epochs``.
        verbose: Keras ``fit`` verbosity.
        callbacks: Extra Keras callbacks (run after the built-in ones).

    Returns:
        The trained model (best validation weights), its history, the run
        directory and the device description.

    Raises:
        RunExistsError: ``run_dir`` holds a run and ``resume`` is False.
        ValueError: resuming with another config.
        catchrl.supervised.datasets.DatasetError: the data does not fit the task.

    """
    run = Path(run_dir)
    ds = load_dataset(cfg.data, kind=DATA_KINDS[cfg.task])
    record = {"config": dataclasses.asdict(cfg), "dataset": dataclasses.asdict(ds.config)}
    _prepare_run_dir(run, record, resume)
    device = setup_device()
    keras.utils.set_random_seed(cfg.seed)
    batch = (cfg.batch_size or CPU_BATCH[cfg.task]) * (
        1 if cfg.batch_size else device["batch_scale"]
    )
    train_data, val_data, n_train, _ = _pipelines(cfg, ds, batch)
    backup = run / "checkpoints" / "backup"
    initial_epoch = 0
    if resume and not backup.exists() and (run / "model.keras").exists():
        model = keras.models.load_model(run / "model.keras")  # a finished run: train on
        initial_epoch = _epochs_done(run)
    else:
        model = _build(cfg, ds)
    monitor = "val_loss" if val_data is not None else "loss"
    builtin = [
        _Throughput(n_train),
        keras.callbacks.BackupAndRestore(str(backup)),
        keras.callbacks.EarlyStopping(
            monitor=monitor, patience=cfg.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.3, patience=max(cfg.patience // 2, 1), min_lr=1e-5
        ),
        keras.callbacks.ModelCheckpoint(
            str(run / "checkpoints" / "best.keras"), monitor=monitor, save_best_only=True
        ),
        keras.callbacks.TensorBoard(str(run / "tb"), profile_batch=0),
        keras.callbacks.CSVLogger(
            str(run / "metrics.tsv"),
            separator="\t",
            append=resume and (run / "metrics.tsv").exists(),
        ),
    ]
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=cfg.epochs,
        initial_epoch=initial_epoch,
        callbacks=builtin + list(callbacks or ()),
        verbose=verbose,
        shuffle=False,
    )
    tmp = run / "model.tmp.keras"
    model.save(tmp)
    os.replace(tmp, run / "model.keras")
    return TrainOutcome(
        model, {k: [float(v) for v in vs] for k, vs in history.history.items()}, run, device
    )


# --- evaluation -------------------------------------------------------------------


def _all_stacks(
    ds: GameDataset, last: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert ds.frames is not None
    steps = last or ds.steps + 1
    g, t = np.meshgrid(np.arange(ds.num_games), np.arange(steps), indexing="ij")
    g, t = g.ravel(), t.ravel()
    return frame_stacks(ds.frames, g, t, ds.config.frame_stack), g, t


def evaluate_model(
    task: str,
    model: keras.Model | str,
    data: str | GameDataset,
    perception: keras.Model | str | None = None,
) -> dict[str, float]:
    """Measure a trained model on a (held-out) dataset.

    Args:
        task: ``"perception"``, ``"sequence"`` or ``"imitation"``.
        model: The model or its ``.keras`` path.
        data: A dataset or its path (games with seeds not trained on).
        perception: For ``"sequence"`` on a dataset with frames: read the
            states through this perception model instead of the true ones.

    Returns:
        perception: ``mae_px_<col>`` (mean absolute error in frame pixels;
        ``ball_vx`` in world px / step), ``within_1px_<col>``, and
        ``mean_baseline_mae_px_<col>`` (always predicting the mean).
        sequence: ``landing_mae_px`` and ``straight_down_mae_px`` over
        observations with a full window (``t >= k - 1``), ``catch_accuracy``
        and ``catch_base_rate``. imitation: ``action_accuracy`` (agreement with
        the oracle). All with ``samples``.

    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if isinstance(model, (str, os.PathLike)):
        model = keras.models.load_model(model)
    ds = data if isinstance(data, GameDataset) else load_dataset(data, kind=DATA_KINDS[task])
    params, size = ds.params, ds.config.frame_size
    if task == "perception":
        x, g, t = _all_stacks(ds)
        true = perception_targets(params, ds.states[g, t])
        pred = perceive(model, x)
        names = ["ball_x", "ball_y", "paddle_x", "ball_vx"][: true.shape[1]]
        # frame px per unit: positions were divided by width/height; speed by drift.
        unit = np.array([size, size, size, params.drift * size / params.width][: true.shape[1]])
        err = np.abs(pred - true) * unit
        base = np.abs(true - true.mean(0)) * unit
        out: dict[str, float] = {"samples": float(len(x))}
        for i, name in enumerate(names):
            out[f"mae_px_{name}"] = float(err[:, i].mean())
            out[f"within_1px_{name}"] = float((err[:, i] < 1.0).mean())
            out[f"mean_baseline_mae_px_{name}"] = float(base[:, i].mean())
        return out
    if task == "imitation":
        from catchrl.agents._backend import compile_predict

        x, g, t = _all_stacks(ds, ds.steps)
        predict = compile_predict(model)
        pred = np.concatenate(
            [np.argmax(predict(x[i : i + 2048]), -1) for i in range(0, len(x), 2048)]
        )
        return {
            "samples": float(len(x)),
            "action_accuracy": float((pred == ds.oracle_actions[g, t]).mean()),
        }
    window = int(model.input_shape[1])
    perceived = None
    if perception is not None:
        if ds.frames is None:
            raise ValueError("perceived states need a dataset with frames")
        pm = keras.models.load_model(perception) if isinstance(perception, str) else perception
        x, g, t = _all_stacks(ds)
        perceived = perceive(pm, x).reshape(ds.num_games, ds.steps + 1, -1)
    xs, landing, caught = sequence_arrays(ds, window, perceived)
    xs, landing, caught = (a[:, window - 1 :] for a in (xs, landing, caught))
    xs = xs.reshape(-1, window, xs.shape[-1])
    landing, caught = landing.reshape(-1), caught.reshape(-1)
    pred = model.predict(xs, batch_size=4096, verbose=0)
    scale = size  # landing is x / width; frame px = x / width * size
    return {
        "samples": float(len(xs)),
        "landing_mae_px": float(np.abs(pred["landing_x"][:, 0] - landing).mean() * scale),
        "straight_down_mae_px": float(np.abs(straight_down(xs) - landing).mean() * scale),
        "catch_accuracy": float(((pred["catch"][:, 0] > 0.5) == (caught > 0.5)).mean()),
        "catch_base_rate": float(caught.mean()),
    }
