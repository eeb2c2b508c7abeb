"""The learners' interface to the run loop (:mod:`catchrl.runloop`), and which one trains a config.

A learner drives its own environment: ``loop.record_step(report)`` after every vector step,
``loop.at_safe_point()`` wherever its state can be saved (True: stop now).
``open_run(load_config("fast-state"), "runs/state").run()`` trains a run.
"""

from __future__ import annotations

import importlib
import os
import random
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from catchrl.config import ConfigError, TrainConfig
from catchrl.runloop import RunLoop, StepReport, TrainResult

__all__ = ["LEARNERS", "Learner", "StepReport", "TrainResult", "open_run"]

LEARNERS = {
    "dqn": "catchrl.training:DQNLearner",
    "sb3-dqn": "catchrl.sb3_train:SB3Learner",
    "sb3-ppo": "catchrl.sb3_train:SB3Learner",
    "sb3-a2c": "catchrl.sb3_train:SB3Learner",
    "sb3-qrdqn": "catchrl.sb3_train:SB3Learner",
    "rllib-ppo": "catchrl.rllib_train:RLlibLearner",
    "rllib-dqn": "catchrl.rllib_train:RLlibLearner",
    "rllib-appo": "catchrl.rllib_train:RLlibLearner",
}
"""Every ``algo`` -> its learner's ``module:Class`` (imported when used: SB3, Ray are optional)."""


class Learner(ABC):
    """A learning algorithm plugged into the run loop (``trust_pickle``: for :meth:`set_state`)."""

    model_name: ClassVar[str]  # the final model's file name in the run directory: model.keras
    has_epsilon: bool = True  # whether it explores by ε (not PPO, A2C)
    framework_bytes: ClassVar[int] = 0  # its framework's own peak memory in a run (measured)

    def __init__(self, cfg: TrainConfig, trust_pickle: bool = False) -> None:
        self.cfg = cfg
        self.trust_pickle = trust_pickle

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """Memory the learner's envs and storage need for ``cfg`` (0: not estimated)."""
        return 0

    @abstractmethod
    def run(self, loop: RunLoop) -> None:
        """Train, reporting to ``loop``, until ``loop.at_safe_point()`` says stop."""

    @abstractmethod
    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The evaluation policy: one action per observation of the batch."""

    @abstractmethod
    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """Everything needed to resume exactly: ``(arrays by file stem, JSON-ready meta)``."""

    @abstractmethod
    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (ValueError or KeyError if it does not fit)."""

    @abstractmethod
    def save_model(self, path: Path) -> None:
        """Write the playing model to ``path``."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the learner's environments."""


def set_torch_threads() -> None:
    """One torch thread (``CATCHRL_TORCH_THREADS`` for more): measured in docs/sb3.md."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("CATCHRL_TORCH_THREADS") or 1)))


def rng_states() -> dict[str, Any]:
    """The global RNGs SB3 and RLlib draw from (numpy's, torch's, Python's), as JSON."""
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    version, words, gauss_next = random.getstate()
    return {
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state().tolist(),
        "python": [version, list(words), gauss_next],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore :func:`rng_states`."""
    import torch

    kind, keys, pos, has_gauss, gauss = states["numpy"]
    keys = np.array(keys, dtype=np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))  # noqa: NPY002
    torch.set_rng_state(torch.tensor(states["torch"], dtype=torch.uint8))
    version, words, gauss_next = states["python"]
    random.setstate((version, tuple(words), gauss_next))


def learner_class(algo: str) -> type[Learner]:
    """The learner class for ``algo``; ConfigError if unknown or its framework is missing."""
    if algo not in LEARNERS:
        raise ConfigError(f"unknown algo {algo!r}; choose {', '.join(LEARNERS)}")
    module_name, _, name = LEARNERS[algo].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(
            f"algo {algo!r} needs {e.name}, which is not installed: pip install 'catchrl[all]'"
        ) from e
    return getattr(module, name)


def open_run(cfg: TrainConfig | None, run_dir: str | Path, **options: Any) -> RunLoop:
    """Open (and lock) a run directory to train ``cfg``; ``options``: those of RunLoop."""
    from catchrl.frameworks import tensorboard_without_tensorflow

    # For callers that skip configure_frameworks (scripts, sweep workers): SB3, loaded
    # next, imports torch.utils.tensorboard, which must not import TensorFlow.
    tensorboard_without_tensorflow()
    return RunLoop(cfg, run_dir, lambda c: learner_class(c.algo), **options)
