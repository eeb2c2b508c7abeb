"""The supervised tasks: their config, data for Keras ``fit``, models and evaluation.

Training runs through the application's trainer and run directory
(:mod:`catchrl.supervised_train`, ``catchrl supervised train``).

The whole training set is held in memory as uint8 frame stacks up to
:data:`IN_MEMORY_BYTES` (beyond that a ``tf.data`` pipeline builds them batch by
batch); the train step is XLA-compiled per :data:`JIT_COMPILE` (measured:
``docs/supervised_results.md``). With a GPU, models are built under
``mixed_float16`` (outputs float32) with 8x larger batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

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
    "FitData",
    "SupervisedConfig",
    "build_model",
    "evaluate_model",
    "fit_arrays",
    "fit_data",
    "setup_device",
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


@dataclass
class FitData:
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
    data = fit_data(cfg, ds, 0, in_memory=True)
    return data.train, data.val


def fit_data(
    cfg: SupervisedConfig, ds: GameDataset, batch: int, in_memory: bool = False
) -> FitData:
    """The training and validation data: in memory when it fits, else ``tf.data``."""
    train_g, val_g = split_games(ds.num_games, cfg.val_fraction, cfg.seed)
    if cfg.task == "sequence":
        x, landing, caught = _sequence_inputs(cfg, ds)

        def rows(games: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            ys = {"landing_x": landing[games].reshape(-1, 1), "catch": caught[games].reshape(-1, 1)}
            return x[games].reshape(-1, cfg.window, x.shape[-1]), ys

        val = rows(val_g) if len(val_g) else None
        return FitData(rows(train_g), val, len(train_g) * x.shape[1], arrays=True)
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
        return FitData(rows(train_g), val, len(train_g) * per_game, arrays=True)
    train = tf_frame_dataset(ds, targets, train_g, last, batch, shuffle=True, seed=cfg.seed)
    val = tf_frame_dataset(ds, targets, val_g, last, batch, shuffle=False) if len(val_g) else None
    return FitData(train, val, len(train_g) * per_game, arrays=False)


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
        from catchrl.agents.networks import compile_predict

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
