"""The learners' interface to the run loop, which one trains a config, and opening a run.

``open_run(load_config("fast-state"), "runs/state").run()`` trains a run.
"""

from __future__ import annotations

import dataclasses
import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from catchrl.agents import rllib_algos, sb3
from catchrl.config import ConfigError, TrainConfig, apply_overrides, config_from_dict, load_config
from catchrl.errors import CheckpointError, RunDirError, did_you_mean
from catchrl.rundir import RunDir
from catchrl.runloop import RunLoop

LEARNERS = {
    "dqn": "catchrl.training:DQNLearner",
    **dict.fromkeys(sb3.ALGOS, "catchrl.sb3_train:SB3Learner"),
    **dict.fromkeys(rllib_algos.ALGOS, "catchrl.rllib_train:RLlibLearner"),
}
"""Every ``algo`` -> its learner's ``module:Class`` (imported when used: SB3, Ray are optional)."""


class Learner(ABC):
    """A learning algorithm plugged into the run loop (``trust_pickle``: for :meth:`set_state`).

    It drives its own games: ``loop.record_step(rewards, ended, ...)`` after each step,
    ``loop.at_safe_point()`` wherever its state can be saved (True: stop now).
    """

    model_name: ClassVar[str]  # the final model's file name in the run directory: model.keras
    has_epsilon: bool = True  # whether it explores by ε (not PPO, A2C)
    framework_bytes: ClassVar[int] = 0  # its framework's own peak memory in a run (measured)

    def __init__(self, cfg: TrainConfig, trust_pickle: bool = False) -> None:
        self.cfg = cfg
        self.trust_pickle = trust_pickle

    @classmethod
    def best_name(cls) -> str:
        """The kept best model's file name: ``best`` and the model's suffix (``best.keras``)."""
        return "best" + Path(cls.model_name).suffix

    @staticmethod
    @abstractmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """Memory the learner's envs and storage need for ``cfg``."""

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

    def close(self) -> None:
        """Release the learner's environments (``self.env``, where it has one)."""
        if hasattr(self, "env"):
            self.env.close()


def check_algo(algo: str) -> None:
    """ConfigError unless ``algo`` is one of :data:`LEARNERS`."""
    if algo not in LEARNERS:
        choose = f"choose {', '.join(LEARNERS)}{did_you_mean(algo, LEARNERS)}"
        raise ConfigError(f"unknown algo {algo!r}; {choose}")


def learner_class(algo: str) -> type[Learner]:
    """The learner class for ``algo``; ConfigError if unknown or its framework is missing."""
    check_algo(algo)
    module_name, _, name = LEARNERS[algo].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(
            f"algo {algo!r} needs {e.name}, which is not installed: pip install 'catchrl[all]'"
        ) from e
    return getattr(module, name)


def open_run(
    cfg: TrainConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    resume_overrides: Sequence[str] = (),
    trust_pickle: bool = False,
    keep_checkpoints: int = 1,
    **options: Any,
) -> RunLoop:
    """Lock a run directory and open a run of ``cfg`` in it; ``options``: RunLoop's.

    ``cfg`` is None on ``resume`` (the checkpoint's config, with ``resume_overrides``);
    ``trust_pickle``: the learner may unpickle its checkpoint (SB3's).
    """
    from catchrl.envs.sizing import check_fits
    from catchrl.monitor import tensorboard_without_tensorflow

    # For callers that skip configure_frameworks (scripts, sweep workers): SB3, loaded
    # next, imports torch.utils.tensorboard, which must not import TensorFlow.
    tensorboard_without_tensorflow()
    rd = RunDir(run_dir, keep=keep_checkpoints)
    rd.acquire_lock()
    try:
        cfg, checkpoint, saved = open_config(rd, cfg, resume, resume_overrides)
        learner_cls = learner_class(cfg.algo)
        need = learner_cls.estimate_bytes(cfg) + learner_cls.framework_bytes
        what = f"this configuration (env.num_envs={cfg.env.num_envs}, env.frame_size="
        what += f"{cfg.env.frame_size}, agent.replay_capacity={cfg.agent.replay_capacity})"
        try:  # before allocating
            check_fits(what, need, "agent.replay_capacity or env.num_envs")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        loop = RunLoop(rd, cfg, learner_cls(cfg, trust_pickle), resume, **options)
        if saved is not None:
            loop.restore(checkpoint, *saved)
        return loop
    except BaseException:
        rd.release_lock()
        raise


RESUMABLE = ("run.total_steps=", "run.eval_every=", "run.eval_games=", "run.target_win_rate=")
"""The settings a resumed run may change (its budget and bookkeeping); the rest is fixed."""


def open_config(
    rd: RunDir, cfg: TrainConfig | None, resume: bool, overrides: Sequence[str]
) -> tuple[TrainConfig, Path | None, tuple[dict[str, Any], dict[str, Any]] | None]:
    """The config to train, the latest checkpoint and its ``(arrays, state)`` (None: fresh)."""
    if not resume:
        if cfg is None:
            raise ValueError("a run needs a config unless it resumes")
        rd.check_fresh()
        return cfg, None, None
    for text in overrides:
        if not text.startswith(RESUMABLE):
            raise RunDirError(
                f"--resume keeps the run's config; only {', '.join(k[:-1] for k in RESUMABLE)} "
                f"may change, not {text.split('=')[0]!r}"
            )
    run_cfg = load_config(path=rd.config_path) if rd.config_path.is_file() else None
    checkpoint = rd.latest_checkpoint()
    if checkpoint is None:
        if run_cfg is None:
            raise CheckpointError(
                f"--resume: no checkpoint and no config.toml in {str(rd.path)!r}: "
                "it holds no catchrl run"
            )
        # Stopped before its first checkpoint (kill -9): start it again from its config.
        return apply_overrides(run_cfg, list(overrides)), None, None
    arrays, state = RunDir.load_checkpoint(checkpoint)
    try:
        ckpt_cfg = config_from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {checkpoint}: bad config ({e})") from e
    if run_cfg is not None:  # refuse a checkpoint of another algorithm, game or agent
        ours, theirs = dataclasses.asdict(run_cfg), dataclasses.asdict(ckpt_cfg)
        differ = [("algo", theirs["algo"], ours["algo"])]
        for table in ("env", "agent", "sb3", "rllib"):
            a, b = ours[table], theirs[table]
            differ += [(f"{table}.{k}", b.get(k), a.get(k)) for k in sorted(set(a) | set(b))]
        for key, there, here in differ:
            if there != here:
                raise CheckpointError(
                    f"checkpoint {checkpoint} was made for another setup: {key} is {there!r} "
                    f"there but {here!r} in {rd.config_path}"
                )
    return apply_overrides(ckpt_cfg, list(overrides)), checkpoint, (arrays, state)
