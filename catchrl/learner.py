"""What a learning algorithm gives the run loop (:mod:`catchrl.runloop`), and what a run returns.

A learner drives its own environment and calls back into the loop:
``loop.record_step`` after every vector step (rewards, ended games, ε, loss)
and ``loop.at_safe_point`` wherever its state is consistent and can be saved
(a ``True`` return means stop now). :class:`StepLearner` gets the driving loop
written once; a learner with its own loop (SB3's ``learn()``) implements
:meth:`Learner.run` and reports through the same calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from catchrl.config import TrainConfig
    from catchrl.evaluation import EvalResult
    from catchrl.rundir import RunDir

__all__ = ["Learner", "Loop", "StepLearner", "StepReport", "TrainResult"]


@dataclass
class StepReport:
    """What one vector step did."""

    rewards: np.ndarray  # [N]
    ended: np.ndarray  # [N] bool: the game ended on this step
    epsilon: float
    loss: float | None = None
    """Mean loss of the gradient steps taken on this step (None: none taken)."""


class Loop(Protocol):
    """The calls a learner makes into the run loop."""

    steps: int
    games: int

    def record_step(self, report: StepReport) -> None:
        """Count one vector step."""

    def at_safe_point(self) -> bool:
        """Evaluate and checkpoint when due; whether to stop now."""


class Learner(ABC):
    """A learning algorithm plugged into the run loop.

    Args:
        cfg: The run's config.
        rd: The run directory (a learner reads files from it, never writes).
        trust_pickle: Whether :meth:`set_state` may unpickle checkpoint files
            (which can run code); learners with pickle-free checkpoints ignore it.

    """

    algo: ClassVar[str]
    model_name: ClassVar[str]
    """The final model's file name in the run directory, e.g. ``model.keras``."""
    has_epsilon: bool = True
    """Whether the learner explores by ε (the metrics' ε column); not PPO, A2C."""

    def __init__(self, cfg: TrainConfig, rd: RunDir, trust_pickle: bool = False) -> None:
        self.cfg = cfg
        self.rd = rd
        self.trust_pickle = trust_pickle

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """Memory the learner's env and storage need for ``cfg`` (0: not estimated)."""
        return 0

    @abstractmethod
    def run(self, loop: Any) -> None:
        """Train, calling ``loop.record_step`` and ``loop.at_safe_point``, until told to stop."""

    @abstractmethod
    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The evaluation policy: one action per observation of the batch."""

    @abstractmethod
    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """Everything needed to resume exactly: ``(arrays by file stem, JSON-ready meta)``."""

    @abstractmethod
    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (raise ``ValueError``/``KeyError`` if it does not fit)."""

    @abstractmethod
    def save_model(self, path: Path) -> None:
        """Write the playing model to ``path`` (named like :attr:`model_name`)."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the learner's environments."""


class StepLearner(Learner):
    """A learner that acts and learns one vector step at a time; the loop drives it."""

    @abstractmethod
    def step(self, steps: int, games: int) -> StepReport:
        """Act on the current observations, step the env, store and learn."""

    def run(self, loop: Loop) -> None:
        """Step until the loop says stop (it checks at every step: a safe point)."""
        while not loop.at_safe_point():
            loop.record_step(self.step(loop.steps, loop.games))


@dataclass
class TrainResult:
    """What a finished (or interrupted) run did."""

    games: int
    steps: int
    wins: int
    wall_time: float
    interrupted: bool = False
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    final_eval: EvalResult | None = None
    signum: int | None = None
    """The signal that stopped the run (None if it ran to its budget or target)."""
    best: dict[str, Any] | None = None
    """The best validation evaluation (``best.json``), None without evaluations."""
    eval_model: str | None = None
    """The model file ``final_eval`` played (``best.keras``, ``model.keras``...)."""

    @property
    def exit_code(self) -> int:
        """0, or 128 + the signal that stopped the run (the shell's convention)."""
        return 128 + self.signum if self.signum else 0
