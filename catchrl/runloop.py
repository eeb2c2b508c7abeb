"""The one run loop: everything a training run does besides learning.

:class:`RunLoop` owns a run directory (and its lock), the per-game metrics
rows, TensorBoard scalars and the progress bar, the evaluations, the
checkpoints, the stop rules (steps, games, time, target win rate), the
signals and the final model. A :class:`Learner` plugs in: the Keras DQN
(:mod:`catchrl.training`), the SB3 algorithms (:mod:`catchrl.sb3_train`).

A learner drives its own environment and calls back into the loop:

- :meth:`RunLoop.record_step` after every vector step (rewards, which games
  ended, ε, the loss);
- :meth:`RunLoop.at_safe_point` wherever its state is consistent and can be
  saved (the DQN: before every vector step; SB3: at each rollout's start).
  The loop evaluates, checkpoints and decides there; a ``True`` return means
  stop now.

Learners that act and learn step by step (:class:`StepLearner`) get the
driving loop written once here; learners with their own loop (SB3's
``learn()``) implement :meth:`Learner.run` and report through the same calls.

**Validation and test.** Training-time evaluations play the validation games
(:data:`~catchrl.evaluation.VALIDATION_SEED`); every decision of the run (the
target win rate's early stop, the kept best model) is made on them. The final
evaluation (``eval.json``) plays the test games
(:data:`~catchrl.evaluation.TEST_SEED`), which no part of training touches.

**The best model.** Each evaluation that scores at least the best so far
(ties go to the later one) writes ``best.keras`` (``best.zip`` for SB3) and
``best.json`` (its step, games and validation score), beside the final
``model.keras``. The checkpoint carries a copy, so a resumed run keeps its
best model and score. The final evaluation is of the kept model: the best one
when the run evaluated, else the final one.

**Signals.** SIGINT, SIGTERM and SIGHUP ask the run to stop at the next safe
point, which writes a checkpoint (mid-game if need be) and ends the run with
exit code 128 + the signal. A second signal stops at once: with
:class:`RunInterrupted`, or, where the caller set
:attr:`RunLoop.second_signal_exit` (``catchrl train``), by leaving the process
there and then; checkpoints are written with those signals blocked, so the
last checkpoint stays complete either way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import numpy as np

from catchrl.config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_run_config,
    to_toml,
)
from catchrl.errors import CheckpointError, DiskFullError, RunDirError
from catchrl.evaluation import TEST_SEED, VALIDATION_SEED, EvalResult, evaluate
from catchrl.monitor import Progress, ScalarWriter
from catchrl.rundir import RunDir, balls_caught, checkpoint_name, metrics_row

__all__ = [
    "RESUMABLE",
    "STOP_SIGNALS",
    "Learner",
    "RunInterrupted",
    "RunLoop",
    "StepLearner",
    "StepReport",
    "TrainResult",
]

# The settings a resumed run may change (its budget and bookkeeping); the rest is fixed.
RESUMABLE = (
    "run.total_steps=",
    "run.total_games=",
    "run.time_limit_s=",
    "run.eval_every=",
    "run.eval_games=",
    "run.checkpoint_every=",
    "run.target_win_rate=",
)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunInterrupted(BaseException):
    """A second stop signal arrived: the run ends now, on its last checkpoint."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


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


@dataclass
class StepReport:
    """What one vector step of a :class:`StepLearner` did."""

    rewards: np.ndarray  # [N]
    ended: np.ndarray  # [N] bool: the game ended on this step
    epsilon: float
    loss: float | None = None
    """Mean loss of the gradient steps taken on this step (None: none taken)."""


class Learner(ABC):
    """What a learning algorithm gives the run loop.

    Args:
        cfg: The run's config.
        rd: The run directory (a learner reads files from it, never writes).
        trust_pickle: Whether :meth:`set_state` may unpickle checkpoint files
            (which can run code); learners with pickle-free checkpoints ignore it.

    """

    algo: ClassVar[str]
    model_name: ClassVar[str]
    """The final model's file name in the run directory, e.g. ``model.keras``."""

    def __init__(self, cfg: TrainConfig, rd: RunDir, trust_pickle: bool = False) -> None:
        self.cfg = cfg
        self.rd = rd
        self.trust_pickle = trust_pickle

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """Memory the learner's env and storage need for ``cfg`` (0: not estimated)."""
        return 0

    @abstractmethod
    def run(self, loop: RunLoop) -> None:
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

    def after_evaluation(self, win_rate: float) -> str | None:
        """React to a validation evaluation (e.g. settle learning); a message for the log."""
        return None

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the learner's environments."""


class StepLearner(Learner):
    """A learner that acts and learns one vector step at a time; the loop drives it."""

    @abstractmethod
    def step(self, steps: int, games: int) -> StepReport:
        """Act on the current observations, step the env, store and learn."""

    def run(self, loop: RunLoop) -> None:
        """Step until the loop says stop (it checks at every step: a safe point)."""
        while not loop.at_safe_point():
            loop.record_step(self.step(loop.steps, loop.games))


class RunLoop:
    """One training run in a run directory, with a learner plugged in.

    Args:
        cfg: The run's config (None on resume: the checkpoint's config is used).
        run_dir: The run directory.
        learner_for: Gives the learner class for a config (its ``algo``).
        resume: Continue from the latest checkpoint in ``run_dir``.
        progress: Progress bar (True), plain lines (False), or bar on a TTY (None).
        resume_overrides: ``--set run.KEY=VALUE`` changes on resume (only
            :data:`RESUMABLE` keys).
        trust_pickle: Passed to the learner: may its checkpoint be unpickled.
        on_evaluation: Called with each training-time evaluation's record (the
            dict appended to ``evals.json``) once it is written; a study
            (Ray Tune) reports it from there. A true return stops the run there
            (as a reached target does). Its time is not training time.
        keep_checkpoints: Complete checkpoints kept (1: the latest).

    Raises:
        RunDirError: The folder is in use, not a run, or holds a run already.
        CheckpointError: The checkpoint is corrupt or made for another setup.
        ConfigError: A bad override, or a config the machine cannot hold.

    """

    def __init__(
        self,
        cfg: TrainConfig | None,
        run_dir: str | Path,
        learner_for: Callable[[TrainConfig], type[Learner]],
        resume: bool = False,
        progress: bool | None = None,
        resume_overrides: Sequence[str] = (),
        trust_pickle: bool = False,
        on_evaluation: Callable[[dict[str, Any]], bool | None] | None = None,
        keep_checkpoints: int = 1,
    ) -> None:
        self.rd = RunDir(run_dir, keep=keep_checkpoints)
        self.on_evaluation = on_evaluation
        self.second_signal_exit: str | None = None
        """A line for a second stop signal to print before it ends the process at once
        (``os._exit(128 + signal)``: no unwinding, no teardown; the lock is the kernel's and
        goes with the process). An exception raised from wherever the signal lands can
        interrupt TensorFlow mid-call, and its unwinding once aborted the process with a
        corrupted heap (a double SIGTERM, ``tests/app/test_run_faults.py``). ``None`` (the
        default, for a library caller): the second signal raises :class:`RunInterrupted`."""
        self.resume = resume
        self.progress_mode = progress
        self.checkpoint: Path | None = None
        self.rd.acquire_lock()
        try:
            ckpt = self._open(cfg, resume_overrides)
            self.learner_cls = learner_for(self.cfg)
            self._check_memory()
            self._init_counters()
            self.learner = self.learner_cls(self.cfg, self.rd, trust_pickle=trust_pickle)
            if ckpt is not None:
                self._restore(*ckpt)
        except BaseException:
            self.rd.release_lock()
            raise

    # -- opening the run ---------------------------------------------------------

    def _open(
        self, cfg: TrainConfig | None, overrides: Sequence[str]
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]] | None:
        """Set ``self.cfg``; return the checkpoint to restore (None: a fresh start)."""
        if not self.resume:
            if cfg is None:
                raise ValueError("RunLoop needs a config unless it resumes")
            self.rd.check_fresh()
            self.cfg, self.fresh = cfg, True
            return None
        for text in overrides:
            if not text.startswith(RESUMABLE):
                raise RunDirError(
                    f"--resume keeps the run's config; only {', '.join(RESUMABLE)} "
                    f"may change, not {text.split('=')[0]!r}"
                )
        run_cfg = self._run_config()
        self.checkpoint = self.rd.latest_checkpoint()
        if self.checkpoint is None:
            if run_cfg is None:
                raise CheckpointError(
                    f"--resume: no checkpoint and no config.toml in {str(self.rd.path)!r}: "
                    "it holds no catchrl run"
                )
            # Stopped before its first checkpoint (kill -9): start it again from its config.
            self.cfg, self.fresh = apply_overrides(run_cfg, list(overrides)), True
            return None
        arrays, state = RunDir.load_checkpoint(self.checkpoint)
        try:
            ckpt_cfg = config_from_dict(state["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {self.checkpoint}: bad config ({e})") from e
        if run_cfg is not None:
            self._check_same_setup(run_cfg, ckpt_cfg)
        self.cfg, self.fresh = apply_overrides(ckpt_cfg, list(overrides)), False
        return arrays, state

    def _run_config(self) -> TrainConfig | None:
        if not self.rd.config_path.is_file():
            return None
        from catchrl.rundir import read_text

        read_text(self.rd.config_path)  # a clear error if it is not UTF-8
        return load_run_config(self.rd.config_path)

    def _check_same_setup(self, run_cfg: TrainConfig, ckpt_cfg: TrainConfig) -> None:
        """Refuse a checkpoint made for another game or agent than this run's config.toml."""
        ours, theirs = config_to_dict(run_cfg), config_to_dict(ckpt_cfg)
        if ours.get("algo", "dqn") != theirs.get("algo", "dqn"):
            raise CheckpointError(
                f"checkpoint {self.checkpoint} was made by --algo {theirs.get('algo', 'dqn')}, "
                f"but {self.rd.config_path} says {ours.get('algo', 'dqn')}"
            )
        for table in ("env", "agent", "sb3", "rllib"):
            a, b = ours.get(table, {}), theirs.get(table, {})
            diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            if diff:
                k = diff[0]
                raise CheckpointError(
                    f"checkpoint {self.checkpoint} was made for another setup: {table}.{k} "
                    f"is {b.get(k)!r} there but {a.get(k)!r} in {self.rd.config_path}"
                )

    def _check_memory(self) -> None:
        """Refuse, before allocating, a configuration this machine cannot hold."""
        from catchrl.config import ConfigError
        from catchrl.envs import available_memory_bytes

        need = self.learner_cls.estimate_bytes(self.cfg)
        have = available_memory_bytes()
        if need > have:
            raise ConfigError(
                f"this configuration needs ~{need / 2**30:.1f} GiB of memory (env "
                f"num_envs={self.cfg.env.num_envs}, frame_size={self.cfg.env.frame_size}, "
                f"agent.replay_capacity={self.cfg.agent.replay_capacity}), more than the "
                f"{have / 2**30:.1f} GiB available"
            )

    def _init_counters(self) -> None:
        n = self.cfg.env.num_envs
        self.steps = self.games = self.wins = 0
        self.elapsed = 0.0
        self.recent: deque[float] = deque(maxlen=100)
        self.evaluations: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        """The best validation evaluation's record (None: no evaluation yet)."""
        self.game_reward = np.zeros(n, dtype=np.float64)
        self.loss_sum, self.loss_count = 0.0, 0
        self.metrics_offset: int | None = 0 if self.resume else None
        self.signum: int | None = None
        # games played at the last evaluation / periodic checkpoint (a resume may change
        # eval_every or checkpoint_every: what is due is counted from these)
        self._last_eval_games = self._last_ckpt_games = 0
        self._last_ckpt: tuple[int, int] | None = None
        self._train_cpu = 0.0

    # -- checkpoints ---------------------------------------------------------------

    def _state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        arrays, meta = self.learner.get_state()
        arrays["loop"] = {"game_reward": self.game_reward.copy()}
        if self.best is not None and self.best_path.is_file():
            arrays["best_model"] = {"data": np.fromfile(self.best_path, dtype=np.uint8)}
        state = {
            "config": config_to_dict(self.cfg),
            "algo": self.cfg.algo,
            "steps": self.steps,
            "games": self.games,
            "wins": self.wins,
            "elapsed": self.elapsed,
            "train_cpu_s": self._train_cpu_now(),
            "recent": list(self.recent),
            "evaluations": self.evaluations,
            "loss_sum": self.loss_sum,
            "loss_count": self.loss_count,
            "last_eval_games": self._last_eval_games,
            "last_ckpt_games": self._last_ckpt_games,
            "best": self.best,
            "metrics_bytes": self.rd.metrics_path.stat().st_size,
            "learner": meta,
        }
        return arrays, state

    def _restore(self, arrays: dict[str, dict[str, np.ndarray]], state: dict[str, Any]) -> None:
        try:
            self.learner.set_state(arrays, state["learner"])
            self.game_reward[:] = arrays["loop"]["game_reward"]
            self.steps, self.games, self.wins = state["steps"], state["games"], state["wins"]
            self.elapsed, self._train_cpu = state["elapsed"], state["train_cpu_s"]
            self.recent.extend(state["recent"])
            self.evaluations = list(state["evaluations"])
            self.loss_sum, self.loss_count = state["loss_sum"], state["loss_count"]
            self._last_eval_games = state["last_eval_games"]
            self._last_ckpt_games = state["last_ckpt_games"]
            self.metrics_offset = int(state["metrics_bytes"])
            self.best = state.get("best")  # (absent in checkpoints before best models)
            best_file = arrays.get("best_model", {}).get("data")
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(
                f"checkpoint {self.checkpoint} does not fit this run ({type(e).__name__}: {e})"
            ) from e
        self._last_ckpt = (self.games, self.steps)
        self._restore_best(best_file)

    def _restore_best(self, data: np.ndarray | None) -> None:
        """Put the checkpoint's best model back (a later one may be on disk from a lost future)."""
        if self.best is None or data is None:
            for path in (self.best_path, self.rd.path / "best.json"):
                path.unlink(missing_ok=True)
            self.best = None
            return
        self.rd.write_file_atomic(self.best_path.name, lambda p: data.tofile(p))
        self.rd.write_json("best.json", self.best)

    @property
    def best_path(self) -> Path:
        """``RUN/best.keras`` (or ``best.zip``: the learner's model type)."""
        return self.rd.path / ("best" + Path(self.learner_cls.model_name).suffix)

    def save_checkpoint(self) -> Path:
        """Write a checkpoint now (the learner must be at a safe point).

        Its wall and CPU seconds are not training time (neither is an evaluation's).
        """
        with self._not_training(), _signals_blocked():
            self.metrics_file.flush()
            arrays, state = self._state()
            path = self.rd.save_checkpoint(checkpoint_name(self.games, self.steps), arrays, state)
        self._last_ckpt = (self.games, self.steps)
        return path

    @contextlib.contextmanager
    def _not_training(self) -> Iterator[None]:
        """Leave the wall and CPU seconds of the block out of the run's training time.

        Nested blocks (a checkpoint that ``on_evaluation`` writes) are counted once.
        """
        t0, cpu0 = time.perf_counter(), self._cpu_now()
        paused0, cpu_paused0 = self._paused, self._cpu_paused
        try:
            yield
        finally:
            self._paused = paused0 + time.perf_counter() - t0
            self._cpu_paused = cpu_paused0 + self._cpu_now() - cpu0

    # -- what learners call ----------------------------------------------------------

    def record_step(self, report: StepReport) -> None:
        """Count one vector step: per-game metrics rows, TensorBoard and progress."""
        rewards, ended = report.rewards, report.ended
        self.steps += len(rewards)
        self.game_reward += rewards
        if report.loss is not None:
            self.loss_sum += report.loss
            self.loss_count += 1
        if not ended.any():
            return
        now = time.perf_counter()
        self.elapsed = now - self._t_start - self._paused
        if now - self._t_rate > 1.0:
            self._rate = (self.steps - self._steps_at_rate) / (now - self._t_rate)
            self._steps_at_rate, self._t_rate = self.steps, now
        loss = self.loss_sum / self.loss_count if self.loss_count else 0.0
        balls, eps = self.cfg.env.balls_per_game, report.epsilon
        for i in np.flatnonzero(ended):
            self.games += 1
            self.wins += balls_caught(self.game_reward[i], balls)
            self.recent.append(float(self.game_reward[i] > 0))
            self.metrics_file.write(
                metrics_row(
                    self.games,
                    loss,
                    self.wins,
                    eps,
                    self.steps,
                    self._rate,
                    float(np.mean(self.recent)),
                    self.elapsed,
                    self.game_reward[i],
                )
            )
        self.game_reward[ended] = 0.0
        self.loss_sum, self.loss_count = 0.0, 0
        win_rate = float(np.mean(self.recent))
        scalars = {
            "rollout/win_rate_100": win_rate,
            "train/loss": loss,
            "time/steps_per_s": self._rate,
            "time/games": self.games,
        }
        if self.learner_has_epsilon:
            scalars["train/epsilon"] = eps
        self.writer.scalars(self.steps, scalars)
        shown = {"games": self.games, "win": f"{100 * win_rate:.0f}%"}
        if self.learner_has_epsilon:  # PPO and A2C have none
            shown["eps"] = f"{eps:.3f}"
        self.bar.update(self.steps, **shown, sps=f"{self._rate:.0f}")

    def at_safe_point(self) -> bool:
        """Evaluate and checkpoint when due; whether the run must stop now."""
        r = self.cfg.run
        self.elapsed = time.perf_counter() - self._t_start - self._paused
        stop = False
        if r.eval_games and _crossed(self._last_eval_games, self.games, r.eval_every):
            self._last_eval_games = self.games
            result, told = self._evaluate_now()
            stop = told or (r.target_win_rate > 0 and result.win_rate >= r.target_win_rate)
            if stop:  # a resumed run keeps its outcome: the budget ends here
                r.total_steps = min(r.total_steps or self.steps, self.steps)
                r.total_games = self.games
        stop = stop or self.signum is not None or self.budget_spent()
        due = _crossed(self._last_ckpt_games, self.games, r.checkpoint_every)
        if due:
            self._last_ckpt_games = self.games
        if (due or stop) and self._last_ckpt != (self.games, self.steps):
            self.save_checkpoint()
        return stop

    def budget_spent(self) -> bool:
        """Whether the steps, games or time budget is used up."""
        r = self.cfg.run
        return (
            (r.total_steps > 0 and self.steps >= r.total_steps)
            or (r.total_games > 0 and self.games >= r.total_games)
            or (r.time_limit_s > 0 and self.elapsed >= r.time_limit_s)
        )

    def step_budget(self) -> int:
        """The env steps this run may take in all (``run.time_limit_s`` alone: a large number)."""
        r = self.cfg.run
        by_games = r.total_games * self.cfg.env.steps_per_game() if r.total_games else 0
        budgets = [b for b in (r.total_steps, by_games) if b > 0]
        return min(budgets) if budgets else 10**12

    # -- evaluation ------------------------------------------------------------------

    def evaluate(self, games: int, seed: int = VALIDATION_SEED) -> EvalResult:
        """Greedy evaluation of the learner on the run's game (validation games by default)."""
        kwargs = self.cfg.env.game_kwargs()
        return evaluate(self.learner.greedy_policy, games=games, seed=seed, **kwargs)

    def evaluate_kept(self, games: int, seed: int = TEST_SEED) -> tuple[str, EvalResult]:
        """Evaluate the kept model (``best.*`` if there is one, else the final one).

        Returns:
            The model file's name and its result (on the test games by default).

        """
        if self.best is None or not self.best_path.is_file():
            return self.learner_cls.model_name, self.evaluate(games, seed)
        from catchrl.policies import load_policy

        loaded = load_policy(str(self.best_path), self.cfg.env.game_kwargs(), allow_sb3=True)
        result = evaluate(loaded.policy, games=games, seed=seed, **loaded.env_kwargs)
        return self.best_path.name, result

    def _evaluate_now(self) -> tuple[EvalResult, bool]:
        """Evaluate on the validation games; the result, and whether on_evaluation said stop."""
        cpu = self._train_cpu_now()
        with self._not_training():  # evaluation, and what on_evaluation does
            return self._evaluate_and_record(cpu)

    def _evaluate_and_record(self, cpu: float) -> tuple[EvalResult, bool]:
        result = self.evaluate(self.cfg.run.eval_games)
        record = result.to_dict()
        record["eval_games"] = record.pop("games")
        entry = {
            "games": self.games,
            "steps": self.steps,
            "wall_time": self.elapsed,
            "train_cpu_s": cpu,
            "seed": VALIDATION_SEED,
            "split": "validation",
            **record,
        }
        best = self.best is None or result.win_rate >= self.best["win_rate"]
        if best:  # ties go to the later model
            with _signals_blocked():
                self.rd.write_file_atomic(self.best_path.name, self.learner.save_model)
                self.best = {"model": self.best_path.name, **entry}
                self.rd.write_json("best.json", self.best)
        self.evaluations.append({**entry, "best": best})
        note = self.learner.after_evaluation(result.win_rate)
        self.writer.scalars(self.steps, {"eval/win_rate": result.win_rate})
        self.rd.write_json("evals.json", self.evaluations)
        mark = " (best so far)" if best else ""
        self.bar.write(f"game {self.games} step {self.steps}: validation {result.summary()}{mark}")
        if note:
            self.bar.write(note)
        told = self.on_evaluation is not None and bool(self.on_evaluation(self.evaluations[-1]))
        return result, told

    @staticmethod
    def _cpu_now() -> float:
        return time.process_time()

    def _train_cpu_now(self) -> float:
        """CPU seconds (all threads) spent training so far, evaluations left out."""
        return self._train_cpu + self._cpu_now() - self._cpu0 - self._cpu_paused

    # -- the run ----------------------------------------------------------------------

    def close(self) -> None:
        """Release the learner and the run's lock without training (``run`` does both)."""
        self.learner.close()
        self.rd.release_lock()

    @property
    def learner_has_epsilon(self) -> bool:
        """Whether the learner explores by ε (its curve is drawn only then)."""
        return bool(getattr(self.learner, "has_epsilon", True))

    def run(self) -> TrainResult:
        """Train until a budget, the target or a signal stops the run; returns what happened.

        The run directory stays locked until this returns.
        """
        try:
            return self._run()
        finally:
            self.close()

    def _run(self) -> TrainResult:
        if self.fresh:
            self.rd.write_config(to_toml(self.cfg))
        self.metrics_file = self.rd.open_metrics(truncate_at=self.metrics_offset)
        if self.evaluations:
            self.rd.write_json("evals.json", self.evaluations)  # as of the checkpoint
        self.writer = ScalarWriter(self.rd.tb_path)
        self.bar = Progress(
            self.step_budget() if self.step_budget() < 10**12 else 0,
            unit="step",
            enabled=self.progress_mode,
            initial=self.steps,
        )
        self._t_start = time.perf_counter() - self.elapsed
        self._t_rate, self._steps_at_rate, self._rate = time.perf_counter(), self.steps, 0.0
        self._paused = 0.0
        self._cpu0, self._cpu_paused = self._cpu_now(), 0.0
        try:
            with self._signal_handlers():
                self.learner.run(self)
                if self._last_ckpt != (self.games, self.steps):
                    self.save_checkpoint()  # the learner's own loop ended (SB3's budget)
            if self.signum is None:
                self.bar.finish()  # the bar's total: the steps actually trained
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DiskFullError(
                f"no space left on the device writing to {self.rd.path}; free some space and "
                "continue with --resume (the last complete checkpoint is kept)"
            ) from e
        finally:
            self.bar.close()
            with contextlib.suppress(OSError):
                self.writer.close()
            with contextlib.suppress(OSError):
                self.metrics_file.close()
        final_eval = None
        self.final_model: str | None = None
        interrupted = self.signum is not None
        if interrupted:
            self.bar.write(
                f"stopped by {signal.Signals(self.signum).name}: checkpoint written "
                f"at game {self.games}, step {self.steps}"
            )
        else:
            with _signals_blocked():
                self.rd.write_file_atomic(self.learner_cls.model_name, self.learner.save_model)
            if self.cfg.run.eval_games:
                model, final_eval = self.evaluate_kept(self.cfg.run.eval_games)
                self.rd.write_json(
                    "eval.json",
                    {"model": model, "seed": TEST_SEED, "split": "test", **final_eval.to_dict()},
                )
                self.final_model = model
        return TrainResult(
            self.games,
            self.steps,
            self.wins,
            self.elapsed,
            interrupted,
            self.evaluations,
            final_eval,
            self.signum,
            self.best,
            self.final_model,
        )

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        def on_signal(signum: int, frame: Any) -> None:
            if self.signum is not None:  # the second one: leave now, the checkpoint stays
                if self.second_signal_exit is not None:
                    _exit_now(self.second_signal_exit, 128 + signum)
                raise RunInterrupted(signum)
            self.signum = signum
            if signum == signal.SIGHUP:
                self.bar.mute()  # the terminal is gone

        try:
            old = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
        except ValueError:  # not the main thread: the caller handles signals
            yield
            return
        try:
            yield
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


def _exit_now(line: str, code: int) -> NoReturn:
    """Print ``line`` to stderr and end the process with ``code``, running nothing else."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, (line + "\n").encode())
    os._exit(code)


def _crossed(last: int, games: int, every: int) -> bool:
    """Whether a multiple of ``every`` games was passed since ``last`` (``every = 0``: never)."""
    return every > 0 and games // every > last // every


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold stop signals back while a checkpoint or model is written (delivered after)."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
