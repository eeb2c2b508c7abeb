"""The learners' interface to the run loop (:mod:`catchrl.runloop`), and which one trains a config.

A learner drives its own environment: ``loop.record_step(report)`` after every vector step,
``loop.at_safe_point()`` wherever its state can be saved (True: stop now).
``open_run(load_config("fast-state"), "runs/state").run()`` trains a run.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from catchrl.config import ConfigError, TrainConfig
from catchrl.rundir import RunDir
from catchrl.runloop import RunLoop, StepReport, TrainResult

__all__ = ["LEARNERS", "Learner", "StepLearner", "StepReport", "TrainResult", "open_run"]

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

    def __init__(self, cfg: TrainConfig, rd: RunDir, trust_pickle: bool = False) -> None:
        self.cfg = cfg
        self.rd = rd
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


class StepLearner(Learner):
    """A learner that acts and learns one vector step at a time; the loop drives it."""

    @abstractmethod
    def step(self, steps: int, games: int) -> StepReport:
        """Act on the current observations, step the env, store and learn."""

    def run(self, loop: RunLoop) -> None:
        """Step until the loop says stop (every step is a safe point)."""
        while not loop.at_safe_point():
            loop.record_step(self.step(loop.steps, loop.games))


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
