"""The supervised tasks: their config, their data for Keras ``fit`` and their compiled models.

Training runs through the application's trainer and run directory
(:mod:`catchrl.supervised_train`, ``catchrl supervised train``). With a GPU,
models are built under ``mixed_float16`` (outputs float32) with 8x larger batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from catchrl.supervised import sequence
from catchrl.supervised.datasets import DatasetError, GameDataset, frame_stacks, perception_targets
from catchrl.supervised.imitation import build_imitation_model
from catchrl.supervised.perception import (
    ARCHITECTURES,
    PixelMSE,
    build_perception_model,
    perceive,
    pixel_units,
)

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
(measured: ``docs/supervised_results.md``)."""
IN_MEMORY_BYTES = 4 << 30
"""Largest set of frame stacks held in memory as arrays (else :class:`FrameStacks`)."""


@dataclass(frozen=True)
class SupervisedConfig:
    """One supervised training run (``data``: the training ``.npz``).

    ``arch`` "": :data:`DEFAULT_ARCH`; ``batch_size`` 0: :data:`CPU_BATCH` (GPU: times
    :data:`GPU_BATCH_SCALE`); ``learning_rate``: Adam's (3e-3, measured on the small CNN);
    ``val_fraction``: whole games held out; ``patience``: EarlyStopping's on ``val_loss``;
    ``landing_weight``: the landing MSE's next to the catch cross-entropy (errors ~0.01);
    ``jit_compile`` None: :data:`JIT_COMPILE`; ``perception``: a ``.keras`` path whose
    states the sequence task trains on instead of the true ones ("": the true states).
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
    window: int = sequence.DEFAULT_WINDOW
    landing_weight: float = 100.0
    jit_compile: bool | None = None
    perception: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if not self.arch:
            object.__setattr__(self, "arch", DEFAULT_ARCH[self.task])
        if self.jit_compile is None:
            object.__setattr__(self, "jit_compile", JIT_COMPILE[self.task])
        archs = sequence.SEQUENCE_ARCHS if self.task == "sequence" else ARCHITECTURES
        if self.arch not in archs:
            kind = "sequence architecture" if self.task == "sequence" else "architecture"
            raise ValueError(f"unknown {kind} {self.arch!r}; choose one of {archs}")
        if self.perception and self.task != "sequence":
            raise ValueError("perception= (perceived states) applies to the sequence task only")
        ok = {
            "epochs": self.epochs >= 1,
            "window": self.window >= 1,
            "batch_size": self.batch_size >= 0,
            "learning_rate": self.learning_rate > 0,
            "val_fraction": 0 <= self.val_fraction < 1,
        }
        wrong = [name for name, fine in ok.items() if not fine]
        if wrong:  # the CLI checks the same, naming its option
            raise ValueError(
                f"SupervisedConfig.{wrong[0]} = {getattr(self, wrong[0])!r} out of range: epochs, "
                "window >= 1; batch_size >= 0; learning_rate > 0; val_fraction in [0, 1)"
            )


def setup_device() -> dict[str, Any]:
    """A GPU gets ``mixed_float16`` (build models after this) and larger batches; describe it."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "float32")
    return {
        "gpu": bool(gpus),
        "devices": [d.name for d in gpus] or ["CPU"],
        "policy": keras.mixed_precision.global_policy().name,
        "batch_scale": GPU_BATCH_SCALE if gpus else 1,
    }


def split_games(
    num_games: int, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint train / validation game indices (whole games, never frames of one game in both)."""
    order = np.random.default_rng(seed).permutation(num_games)
    n_val = max(round(num_games * val_fraction), int(val_fraction > 0))  # at least 1 if any
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def all_stacks(
    ds: GameDataset, last: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every observation's frame stack ``[G * steps, S, S, stack]`` with its game and step."""
    g, t = np.meshgrid(np.arange(ds.num_games), np.arange(last or ds.steps + 1), indexing="ij")
    g, t = g.ravel(), t.ravel()
    return frame_stacks(ds.frames, g, t, ds.config.frame_stack), g, t


class FrameStacks(keras.utils.PyDataset):
    """Batches ``(frame stacks uint8 [B, S, S, stack], targets [B, ...])`` built per batch.

    For datasets too large to hold as stacks: observations ``0 .. steps - 1`` of ``games``,
    labels ``targets [G, steps, ...]``, reshuffled every epoch (``shuffle``) from ``seed``.
    """

    def __init__(
        self,
        ds: GameDataset,
        targets: np.ndarray,
        games: np.ndarray,
        steps: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        g, t = np.meshgrid(games, np.arange(steps), indexing="ij")
        self.index = np.stack([g.ravel(), t.ravel()], axis=1)  # [N, 2]: game, step
        self.ds, self.targets, self.batch_size = ds, targets, batch_size
        self.rng = np.random.default_rng(seed) if shuffle else None
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-len(self.index) // self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.samples(self.index[i * self.batch_size : (i + 1) * self.batch_size])

    def samples(self, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The frame stacks and targets of ``index``'s rows (default: all, in order)."""
        g, t = (self.index if index is None else index).T
        return frame_stacks(self.ds.frames, g, t, self.ds.config.frame_stack), self.targets[g, t]

    def on_epoch_end(self) -> None:
        """Reshuffle (when shuffling)."""
        if self.rng is not None:
            self.rng.shuffle(self.index)


def perceived_states(ds: GameDataset, perception: keras.Model | str) -> np.ndarray:
    """The ``state`` a perception model reads from every observation: ``[G, T + 1, 3 or 4]``."""
    if ds.frames is None:
        raise DatasetError(
            f"perceived states: a {ds.config.kind!r} dataset has no frames; "
            "it needs a dataset with frames (kind frames or expert)"
        )
    model = keras.models.load_model(perception) if isinstance(perception, str) else perception
    x, _, _ = all_stacks(ds)
    return perceive(model, x).reshape(ds.num_games, ds.steps + 1, -1)


def fit_data(cfg: SupervisedConfig, ds: GameDataset, batch: int) -> tuple[dict[str, Any], int]:
    """``model.fit``'s data arguments and the number of training samples.

    Frame stacks are held as arrays when they fit in :data:`IN_MEMORY_BYTES`, else
    built per batch (:class:`FrameStacks`).
    """
    train_g, val_g = split_games(ds.num_games, cfg.val_fraction, cfg.seed)
    if cfg.task == "sequence":
        perceived = perceived_states(ds, cfg.perception) if cfg.perception else None
        x, landing, caught = sequence.sequence_arrays(ds, cfg.window, perceived)

        def rows(games: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            ys = {"landing_x": landing[games].reshape(-1, 1), "catch": caught[games].reshape(-1, 1)}
            return x[games].reshape(-1, cfg.window, x.shape[-1]), ys

        train, val = rows(train_g), (rows(val_g) if len(val_g) else None)
    else:
        perception = cfg.task == "perception"  # imitation: no action at the last observation
        steps = ds.steps + perception
        targets = perception_targets(ds.params, ds.states) if perception else ds.oracle_actions
        stack_bytes = ds.states.shape[0] * steps * ds.config.frame_size**2 * ds.config.frame_stack
        stream = stack_bytes > IN_MEMORY_BYTES
        stacks = FrameStacks(ds, targets, train_g, steps, batch, shuffle=stream, seed=cfg.seed)
        val_stacks = FrameStacks(ds, targets, val_g, steps, batch) if len(val_g) else None
        if stream:
            return {"x": stacks, "validation_data": val_stacks}, len(stacks.index)
        train, val = stacks.samples(), (val_stacks.samples() if val_stacks else None)
    x, y = train
    return {"x": x, "y": y, "batch_size": batch, "shuffle": True, "validation_data": val}, len(x)


def build_model(cfg: SupervisedConfig, ds: GameDataset) -> keras.Model:
    """Build and compile the model of ``cfg`` for ``ds`` (loss, metrics, optimizer)."""
    opt, weights = keras.optimizers.Adam(cfg.learning_rate), None
    shape = (ds.config.frame_size, ds.config.frame_size, ds.config.frame_stack)
    if cfg.task == "sequence":
        model = sequence.build_sequence_model(cfg.arch, cfg.window)
        loss: Any = {"landing_x": "mse", "catch": "binary_crossentropy"}
        weights = {"landing_x": cfg.landing_weight, "catch": 1.0}
        metrics: Any = {"landing_x": ["mae"], "catch": ["accuracy"]}
    elif cfg.task == "perception":
        model = build_perception_model(cfg.arch, ds.params, shape)
        loss, metrics = PixelMSE(pixel_units(ds.params, ds.config.frame_size).tolist()), ["mae"]
    else:
        model = build_imitation_model(cfg.arch, shape)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    model.compile(opt, loss, loss_weights=weights, metrics=metrics, jit_compile=cfg.jit_compile)
    return model


class Throughput(keras.callbacks.Callback):
    """Log each epoch's ``samples_per_s``, ``train_s`` and ``train_cpu_s`` (validation left out)."""

    def __init__(self, samples_per_epoch: int) -> None:
        super().__init__()
        self.samples = samples_per_epoch

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Start the epoch's clocks."""
        self.start = (time.perf_counter(), time.process_time())
        self.spent: tuple[float, float] | None = None

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Stop them where validation starts."""
        if self.spent is None:
            self.spent = (time.perf_counter() - self.start[0], time.process_time() - self.start[1])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Log the epoch's throughput and seconds of training."""
        self.on_test_begin()
        assert self.spent is not None and logs is not None  # set by on_test_begin; Keras' dict
        logs["samples_per_s"] = self.samples / max(self.spent[0], 1e-9)
        logs["train_s"], logs["train_cpu_s"] = self.spent
