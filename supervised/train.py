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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from catchrl.supervised.datasets import (
    DatasetError,
    GameDataset,
    frame_stacks,
    perception_targets,
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
)

if TYPE_CHECKING:
    import tensorflow as tf

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
        x, _, _ = all_stacks(ds)
        perceived = perceive(model, x).reshape(ds.num_games, ds.steps + 1, -1)
    return sequence_arrays(ds, cfg.window, perceived)


def all_stacks(
    ds: GameDataset, last: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every observation's frame stack ``[G * steps, S, S, stack]`` with its game and step."""
    assert ds.frames is not None
    steps = last or ds.steps + 1
    g, t = np.meshgrid(np.arange(ds.num_games), np.arange(steps), indexing="ij")
    g, t = g.ravel(), t.ravel()
    return frame_stacks(ds.frames, g, t, ds.config.frame_stack), g, t


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


def split_games(
    num_games: int, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint train / validation game indices (whole games, never frames of one game in both)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(num_games)
    n_val = round(num_games * val_fraction)
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def tf_frame_dataset(
    ds: GameDataset,
    targets: np.ndarray,
    games: np.ndarray | None = None,
    last_step: int | None = None,
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Build a ``tf.data`` pipeline of ``(frame stacks uint8 [B, S, S, stack], targets[B, ...])``.

    Stacks are assembled from the per-step frames batch by batch, so the
    dataset never holds 4 copies of a frame. Shuffled (per epoch), batched,
    prefetched.

    Args:
        ds: A dataset with frames.
        targets: ``[G, T + 1, ...]`` (or ``[G, T, ...]``) per-observation labels.
        games: Game indices to use (default: all).
        last_step: Use observations ``0 .. last_step - 1`` (default: all of ``targets``).
        batch_size: Batch size.
        shuffle: Reshuffle every epoch.
        seed: Shuffle seed.
        repeat: Repeat forever.

    """
    import tensorflow as tf

    if ds.frames is None:
        raise DatasetError(f"a {ds.config.kind!r} dataset has no frames")
    games = np.arange(ds.num_games) if games is None else np.asarray(games)
    steps = targets.shape[1] if last_step is None else last_step
    gi, ti = np.meshgrid(games, np.arange(steps), indexing="ij")
    index = np.stack([gi.ravel(), ti.ravel()], axis=1).astype(np.int64)  # [N, 2]
    frames, stack = ds.frames, ds.config.frame_stack
    size = ds.config.frame_size
    target_shape = targets.shape[2:]
    target_dtype = tf.as_dtype(targets.dtype)

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = frame_stacks(frames, idx[:, 0], idx[:, 1], stack)
        return x, targets[idx[:, 0], idx[:, 1]]

    def tf_gather(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(gather, [idx], (tf.uint8, target_dtype))
        x.set_shape((None, size, size, stack))
        y.set_shape((None, *target_shape))
        return x, y

    data = tf.data.Dataset.from_tensor_slices(index)
    if shuffle:
        data = data.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    data = data.batch(batch_size).map(tf_gather, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)
