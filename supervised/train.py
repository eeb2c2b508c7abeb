"""Train and evaluate the supervised models with Keras ``fit`` and its callbacks.

A run directory is a :class:`catchrl.rundir.RunDir` (the same lock and atomic
writes as ``catchrl train``'s) holding::

    .lock             held by the one process training the run
    config.json       the SupervisedConfig (and the dataset's generating config)
    metrics.tsv       one row per epoch (CSVLogger, tab-separated), with samples_per_s
    tb/               TensorBoard events
    checkpoints/      ckpt-eNNNNNN/ (RunDir checkpoints, one per epoch, the last 2
                      kept), latest, best.keras (best val_loss)
    model.keras       the final model (best weights: EarlyStopping restores them)

The learning rate drops 3x when ``val_loss`` stalls for ``patience // 2`` epochs
(ReduceLROnPlateau); EarlyStopping restores the best weights.

After every epoch a checkpoint holds the weights, the optimizer (its step and
learning rate included), EarlyStopping's and ReduceLROnPlateau's counters and
the size of ``metrics.tsv``. ``resume=True`` continues a stopped or finished
run from its latest checkpoint (rows written after it are cut off); the
stored config must equal the new one but for ``epochs`` and ``patience``. Every
file is written beside and renamed into place, so a crash leaves the previous
epoch's state whole.

Speed: the whole training set is held in memory as numpy arrays (frame
stacks built once, uint8; up to :data:`IN_MEMORY_BYTES`, beyond that a
``tf.data`` pipeline assembles the stacks batch by batch), fed to ``fit`` as
arrays, and the train step is compiled with XLA (``jit_compile``) and runs
``steps_per_execution`` batches per call. Measured in
``docs/supervised_results.md`` (``catchrl bench supervised``).

Device: with a GPU (``tf.config.list_physical_devices("GPU")``) models are
built under ``mixed_float16`` (output layers stay float32) with 8x larger
batches; otherwise float32 on the CPU. This path has only been run on a CPU
that pretends to be a GPU (``tests/supervised/test_train.py``); no GPU was
available to measure it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from catchrl.errors import CheckpointError, RunDirError
from catchrl.rundir import RunDir
from catchrl.supervised.datasets import (
    DatasetError,
    GameDataset,
    frame_stacks,
    load_dataset,
    perception_targets,
    split_games,
    tf_frame_dataset,
)
from catchrl.supervised.imitation import build_imitation_model
from catchrl.supervised.perception import (
    PixelMSE,
    build_perception_model,
    check_arch,
    perceive,
    pixel_units,
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
    "build_model",
    "evaluate_model",
    "fit_arrays",
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
JIT_COMPILE = {"perception": True, "imitation": True, "sequence": False}
"""XLA for the train step, per task: it pays for the CNNs on the CPU, not for the GRU/LSTM
(``docs/supervised_results.md``)."""
IN_MEMORY_BYTES = 4 << 30
"""Largest training + validation set held in memory as arrays (else a ``tf.data`` pipeline)."""


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
        jit_compile: Compile the train step with XLA; ``None``: per task,
            :data:`JIT_COMPILE` (as measured).
        steps_per_execution: Batches per compiled call (less Python per batch).
        perception: Sequence task on a dataset with frames: train on the
            states this perception model (``.keras`` path) reads from the
            frames instead of the true ones, so the forecaster learns the
            perception's errors (``""``: the true states).

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
    jit_compile: bool | None = None
    steps_per_execution: int = 1
    perception: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if not self.arch:
            object.__setattr__(self, "arch", DEFAULT_ARCH[self.task])
        if self.jit_compile is None:
            object.__setattr__(self, "jit_compile", JIT_COMPILE[self.task])
        if self.task == "sequence":
            if self.arch not in SEQUENCE_ARCHS:
                raise ValueError(
                    f"unknown sequence architecture {self.arch!r}; choose one of {SEQUENCE_ARCHS}"
                )
        else:
            check_arch(self.arch)
        if self.perception and self.task != "sequence":
            raise ValueError("perception= (perceived states) applies to the sequence task only")
        for name in ("epochs", "window", "steps_per_execution"):
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
    """Add ``samples_per_s`` and ``train_cpu_s`` of each epoch's training part to its logs.

    Timed from the epoch's start to its validation (or its end without one),
    so validation is not counted; ``train_cpu_s`` is the process's CPU seconds
    over the same span (wall-clock time is noisy on a shared machine).
    """

    def __init__(self, samples_per_epoch: int) -> None:
        super().__init__()
        self.samples = samples_per_epoch
        self._start = self._cpu = 0.0
        self._spent: tuple[float, float] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._spent = None
        self._start, self._cpu = time.perf_counter(), time.process_time()

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._spent is None:
            self._spent = (time.perf_counter() - self._start, time.process_time() - self._cpu)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_test_begin()
        wall, cpu = self._spent or (0.0, 0.0)
        if logs is not None:
            logs["samples_per_s"] = self.samples / max(wall, 1e-9)
            logs["train_cpu_s"] = cpu


# Settings a resumed run may change (train longer, wait longer).
_RESUMABLE = ("epochs", "patience")
CONFIG_FILE = "config.json"
BEST_MODEL = "checkpoints/best.keras"


def _prepare_run_dir(rd: RunDir, record: dict[str, Any], resume: bool) -> None:
    """Check that ``rd`` may hold this run (fresh, or the same config to resume); write it."""
    if (rd.path / CONFIG_FILE).exists():
        if not resume:
            raise RunExistsError(
                f"{rd.path} already holds a run; pass resume=True (--resume) "
                "to continue it, or choose another directory"
            )
        stored = rd.read_json(CONFIG_FILE)
        stored = stored.get("config", {}) if isinstance(stored, dict) else {}
        # Settings added since the run was made count as their defaults.
        new = record["config"]
        defaults = dataclasses.asdict(SupervisedConfig(new["task"], new["data"], arch=new["arch"]))
        stored = {**{k: v for k, v in defaults.items() if k not in stored}, **stored}
        diff = sorted(
            k
            for k in record["config"]
            if k not in _RESUMABLE and stored.get(k) != record["config"][k]
        )
        if diff:
            raise ValueError(
                f"{rd.path}: cannot resume with another configuration "
                f"(differs in {', '.join(diff)})"
            )
    else:
        if resume and rd.checkpoints_path.exists():
            raise ValueError(f"{rd.path}: no {CONFIG_FILE} to resume from")
        rd.check_fresh()  # nothing else in the folder: not another run, no stray files
    rd.write_json(CONFIG_FILE, record)


def _checkpoint_name(epochs_done: int) -> str:
    return f"ckpt-e{epochs_done:06d}"


def _numbered(arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{i:04d}": np.asarray(a) for i, a in enumerate(arrays)}


def _unnumbered(group: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [group[k] for k in sorted(group)]


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


class _RunDirCheckpoints(keras.callbacks.Callback):
    """After each epoch: the best model and a RunDir checkpoint; on resume, restore them.

    Placed after EarlyStopping, ReduceLROnPlateau and CSVLogger, so what it
    saves includes their work on the epoch (the counters, the new row).

    Args:
        rd: The run directory (its lock held).
        monitor: The logged value whose minimum makes the best model.
        early: The run's EarlyStopping.
        plateau: The run's ReduceLROnPlateau.
        restored: The state of the checkpoint being resumed (``None``: a new run).

    """

    def __init__(
        self,
        rd: RunDir,
        monitor: str,
        early: keras.callbacks.EarlyStopping,
        plateau: keras.callbacks.ReduceLROnPlateau,
        restored: tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.rd, self.monitor = rd, monitor
        self.early, self.plateau = early, plateau
        self.restored = restored
        self.best: float | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # The other callbacks have just reset their counters: put the saved ones back.
        if self.restored is None:
            return
        arrays, state = self.restored
        self.best = _float_or_none(state["best"])
        e, p = state["early_stopping"], state["plateau"]
        self.early.wait, self.early.best_epoch = int(e["wait"]), int(e["best_epoch"])
        self.early.best = _float_or_none(e["best"])
        if "early_best" in arrays:
            self.early.best_weights = _unnumbered(arrays["early_best"])
        self.plateau.wait, self.plateau.cooldown_counter = int(p["wait"]), int(p["cooldown"])
        self.plateau.best = _float_or_none(p["best"])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is not None and (self.best is None or current < self.best):
            self.best = float(current)
            self.rd.write_file_atomic(BEST_MODEL, self.model.save)
        arrays = {
            "model": _numbered(self.model.get_weights()),
            "optimizer": _numbered(
                [keras.ops.convert_to_numpy(v.value) for v in self.model.optimizer.variables]
            ),
        }
        if self.early.best_weights is not None:
            arrays["early_best"] = _numbered(self.early.best_weights)
        state = {
            "epoch": epoch + 1,
            "metrics_bytes": self.rd.metrics_path.stat().st_size,
            "best": self.best,
            "early_stopping": {
                "wait": int(self.early.wait),
                "best": _float_or_none(self.early.best),
                "best_epoch": int(self.early.best_epoch),
            },
            "plateau": {
                "wait": int(self.plateau.wait),
                "best": _float_or_none(self.plateau.best),
                "cooldown": int(self.plateau.cooldown_counter),
            },
        }
        self.rd.save_checkpoint(_checkpoint_name(epoch + 1), arrays, state)


def _restore(model: keras.Model, arrays: dict[str, dict[str, np.ndarray]], where: Path) -> None:
    """Put a checkpoint's weights and optimizer variables into a freshly built ``model``."""
    weights = _unnumbered(arrays["model"])
    if [w.shape for w in weights] != [tuple(w.shape) for w in model.weights]:
        raise CheckpointError(f"{where} holds the weights of another model than this config's")
    model.set_weights(weights)
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    values = _unnumbered(arrays["optimizer"])
    if len(values) != len(optimizer.variables):
        raise CheckpointError(f"{where} holds the state of another optimizer")
    for variable, value in zip(optimizer.variables, values, strict=True):
        variable.assign(value)


def _cut_metrics(rd: RunDir, size: int) -> None:
    """Cut ``metrics.tsv`` back to ``size`` bytes (rows written after the checkpoint go)."""
    path = rd.metrics_path
    have = path.stat().st_size if path.exists() else 0
    if have < size:
        raise RunDirError(
            f"{path} has {have} bytes but the checkpoint recorded {size}: it was truncated "
            "or replaced, so the run's per-epoch record is incomplete"
        )
    if path.exists():
        with open(path, "r+b") as f:
            f.truncate(size)


@dataclass
class _FitData:
    """What ``fit`` trains on: arrays (in memory) or ``tf.data`` pipelines, and sizes."""

    train: Any
    val: Any
    n_train: int
    arrays: bool

    def fit_kwargs(self, batch: int) -> dict[str, Any]:
        """The data arguments of ``model.fit``."""
        if self.arrays:
            x, y = self.train
            return {
                "x": x,
                "y": y,
                "batch_size": batch,
                "shuffle": True,
                "validation_data": self.val,
            }
        return {"x": self.train, "validation_data": self.val, "shuffle": False}


def _sequence_inputs(cfg: SupervisedConfig, ds: GameDataset) -> tuple[np.ndarray, ...]:
    """The sequence task's windows and targets, on true or perceived states."""
    perceived = None
    if cfg.perception:
        if ds.frames is None:
            raise DatasetError(
                f"{cfg.data}: training on perceived states needs a dataset with frames "
                "(kind frames or expert)"
            )
        model = keras.models.load_model(cfg.perception)
        x, _, _ = _all_stacks(ds)
        perceived = perceive(model, x).reshape(ds.num_games, ds.steps + 1, -1)
    return sequence_arrays(ds, cfg.window, perceived)


def fit_arrays(cfg: SupervisedConfig, ds: GameDataset) -> tuple[Any, Any]:
    """Training and validation data of ``cfg`` in memory: ``((x, y), (x, y) or None)``."""
    data = _fit_data(cfg, ds, 0, in_memory=True)
    return data.train, data.val


def _fit_data(
    cfg: SupervisedConfig, ds: GameDataset, batch: int, in_memory: bool = False
) -> _FitData:
    """The training and validation data: in memory when it fits, else ``tf.data``."""
    train_g, val_g = split_games(ds.num_games, cfg.val_fraction, cfg.seed)
    if cfg.task == "sequence":
        x, landing, caught = _sequence_inputs(cfg, ds)

        def rows(games: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            ys = {"landing_x": landing[games].reshape(-1, 1), "catch": caught[games].reshape(-1, 1)}
            return x[games].reshape(-1, cfg.window, x.shape[-1]), ys

        val = rows(val_g) if len(val_g) else None
        return _FitData(rows(train_g), val, len(train_g) * x.shape[1], arrays=True)
    if cfg.task == "perception":
        targets, last = perception_targets(ds.params, ds.states), None
    else:
        targets, last = ds.oracle_actions.astype(np.int32), ds.steps
    per_game = last or targets.shape[1]
    assert ds.frames is not None
    stack_bytes = ds.num_games * per_game * ds.frames[0, 0].size * ds.config.frame_stack
    if in_memory or stack_bytes <= IN_MEMORY_BYTES:

        def rows(games: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            g, t = np.meshgrid(games, np.arange(per_game), indexing="ij")
            g, t = g.ravel(), t.ravel()
            return frame_stacks(ds.frames, g, t, ds.config.frame_stack), targets[g, t]

        val = rows(val_g) if len(val_g) else None
        return _FitData(rows(train_g), val, len(train_g) * per_game, arrays=True)
    train = tf_frame_dataset(ds, targets, train_g, last, batch, shuffle=True, seed=cfg.seed)
    val = tf_frame_dataset(ds, targets, val_g, last, batch, shuffle=False) if len(val_g) else None
    return _FitData(train, val, len(train_g) * per_game, arrays=False)


def build_model(cfg: SupervisedConfig, ds: GameDataset, compiled: bool = True) -> keras.Model:
    """Build and compile the model of ``cfg`` for ``ds`` (loss, metrics, optimizer).

    Args:
        cfg: The run's configuration.
        ds: Its dataset (the game and frame shape).
        compiled: Apply ``cfg.jit_compile`` and ``cfg.steps_per_execution``;
            ``False`` compiles as a plain ``model.compile`` would (the
            benchmark's reference).

    """
    opt = keras.optimizers.Adam(cfg.learning_rate)
    speed: dict[str, Any] = {}
    if compiled:
        speed = {"jit_compile": cfg.jit_compile, "steps_per_execution": cfg.steps_per_execution}
    if cfg.task == "sequence":
        model = build_sequence_model(cfg.arch, cfg.window)
        model.compile(
            opt,
            loss={"landing_x": "mse", "catch": "binary_crossentropy"},
            loss_weights={"landing_x": cfg.landing_weight, "catch": 1.0},
            metrics={"landing_x": ["mae"], "catch": ["accuracy"]},
            **speed,
        )
        return model
    shape = (ds.config.frame_size, ds.config.frame_size, ds.config.frame_stack)
    if cfg.task == "perception":
        model = build_perception_model(cfg.arch, ds.params, shape)
        units = pixel_units(ds.params, ds.config.frame_size)
        model.compile(opt, loss=PixelMSE(units.tolist()), metrics=["mae"], **speed)
    else:
        model = build_imitation_model(cfg.arch, shape)
        model.compile(
            opt,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            **speed,
        )
    return model


def _epochs_done(run: Path) -> int:
    """Epoch rows already in ``metrics.tsv`` (runs from before per-epoch checkpoints)."""
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
        resume: Continue the run stored in ``run_dir`` from its latest
            checkpoint (the last finished epoch; weights, optimizer and the
            callbacks' counters) up to ``cfg.epochs``, whether it was
            interrupted or had finished.
        verbose: Keras ``fit`` verbosity.
        callbacks: Extra Keras callbacks (run after the built-in ones).

    Returns:
        The trained model (best validation weights), its history, the run
        directory and the device description.

    Raises:
        RunExistsError: ``run_dir`` holds a run and ``resume`` is False.
        ValueError: resuming with another config.
        catchrl.errors.RunDirLocked: another process is training in ``run_dir``.
        catchrl.errors.RunDirError: ``run_dir`` holds other files, or a run
            this catchrl cannot resume.
        catchrl.errors.CheckpointError: the latest checkpoint is corrupt or
            made for another model.
        catchrl.supervised.datasets.DatasetError: the data does not fit the task.

    """
    rd = RunDir(run_dir)
    with rd.lock():
        ds = load_dataset(cfg.data, kind=DATA_KINDS[cfg.task])
        record = {"config": dataclasses.asdict(cfg), "dataset": dataclasses.asdict(ds.config)}
        _prepare_run_dir(rd, record, resume)
        device = setup_device()
        keras.utils.set_random_seed(cfg.seed)
        batch = (cfg.batch_size or CPU_BATCH[cfg.task]) * (
            1 if cfg.batch_size else device["batch_scale"]
        )
        data = _fit_data(cfg, ds, batch)
        model, initial_epoch, restored = _model_to_train(cfg, ds, rd, resume)
        monitor = "val_loss" if data.val is not None else "loss"
        history = model.fit(
            **data.fit_kwargs(batch),
            epochs=cfg.epochs,
            initial_epoch=initial_epoch,
            callbacks=_callbacks(cfg, rd, monitor, data.n_train, restored) + list(callbacks or ()),
            verbose=verbose,
        )
        rd.write_file_atomic("model.keras", model.save)
    return TrainOutcome(
        model, {k: [float(v) for v in vs] for k, vs in history.history.items()}, rd.path, device
    )


def _model_to_train(
    cfg: SupervisedConfig, ds: GameDataset, rd: RunDir, resume: bool
) -> tuple[keras.Model, int, tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]] | None]:
    """The model, the epoch to start at and the checkpoint resumed (``None``: none)."""
    latest = rd.latest_checkpoint() if resume else None
    if latest is not None:
        arrays, state = RunDir.load_checkpoint(latest)
        model = build_model(cfg, ds)
        _restore(model, arrays, latest)
        _cut_metrics(rd, int(state["metrics_bytes"]))
        return model, int(state["epoch"]), (arrays, state)
    if resume and rd.model_path.exists():  # finished before per-epoch checkpoints: train on
        return keras.models.load_model(rd.model_path), _epochs_done(rd.path), None
    if resume and (rd.checkpoints_path / "backup").exists():
        raise RunDirError(
            f"{rd.path} was interrupted under an older catchrl (a Keras BackupAndRestore "
            "backup, no per-epoch checkpoints); this one cannot resume it: start a new run"
        )
    rd.metrics_path.unlink(missing_ok=True)  # a first epoch that never reached its checkpoint
    return build_model(cfg, ds), 0, None


def _callbacks(
    cfg: SupervisedConfig,
    rd: RunDir,
    monitor: str,
    n_train: int,
    restored: tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]] | None,
) -> list[keras.callbacks.Callback]:
    """The run's callbacks, in the order they must see each epoch's end."""
    # Keras' TensorBoard callback writes through TensorFlow's tf.summary: drop the
    # pure-Python stub the command line sets for SB3 runs (catchrl.frameworks), or its
    # first write fails with "cannot import tensorflow 2.0 API". TensorBoard resolves
    # the choice lazily, at that first write.
    sys.modules.pop("tensorboard.compat.notf", None)
    early = keras.callbacks.EarlyStopping(
        monitor=monitor, patience=cfg.patience, restore_best_weights=True
    )
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, factor=0.3, patience=max(cfg.patience // 2, 1), min_lr=1e-5
    )
    return [
        _Throughput(n_train),
        early,
        plateau,
        keras.callbacks.TensorBoard(str(rd.tb_path), profile_batch=0),
        keras.callbacks.CSVLogger(
            str(rd.metrics_path), separator="\t", append=rd.metrics_path.exists()
        ),
        _RunDirCheckpoints(rd, monitor, early, plateau, restored),  # after the row is written
    ]


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
        ``ball_vx`` in frame px / step), ``within_1px_<col>``, and
        ``mean_baseline_mae_px_<col>`` (always predicting the mean); with
        drift also ``within_1px_ball_vx_after_first_frame`` and
        ``exact_speed_ball_vx_after_first_frame`` (the speed right to the
        world pixel per step) over observations after a game's first.
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
        unit = pixel_units(params, size)
        err = np.abs(pred - true) * unit
        base = np.abs(true - true.mean(0)) * unit
        out: dict[str, float] = {"samples": float(len(x))}
        for i, name in enumerate(names):
            out[f"mae_px_{name}"] = float(err[:, i].mean())
            out[f"within_1px_{name}"] = float((err[:, i] < 1.0).mean())
            out[f"mean_baseline_mae_px_{name}"] = float(base[:, i].mean())
        if "ball_vx" in names:
            # A game's first observation is four copies of one frame: no speed to see.
            moving = t > 0
            out["within_1px_ball_vx_after_first_frame"] = float((err[moving, 3] < 1.0).mean())
            # 1 frame px / step is drift world px / step, the whole speed range: also
            # the share read to the world pixel (the speed is a whole number of them).
            speed = np.rint(pred[:, 3] * params.drift) == np.rint(true[:, 3] * params.drift)
            out["exact_speed_ball_vx_after_first_frame"] = float(speed[moving].mean())
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
