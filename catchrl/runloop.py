"""The one run loop: everything a training run does besides learning (a learner plugs in).

SIGINT, SIGTERM and SIGHUP stop the run at the next safe point with a checkpoint and exit code
128 + the signal; a second one stops it at once. ``eval.json``: the kept model on the test games.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from catchrl.agents.policy import model_agent
from catchrl.config import TrainConfig, to_toml
from catchrl.errors import CheckpointError
from catchrl.evaluation import TEST_SEED, VALIDATION_SEED, EvalResult, evaluate
from catchrl.monitor import Progress, TensorBoard
from catchrl.rundir import Arrays, RunDir, metrics_row, space_checked

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SAVED = tuple("steps games wins elapsed train_cpu loss_sum loss_count evaluations best".split())
"""The loop's counters and records a checkpoint holds as they are."""
LOOP_TAGS = ("rollout/", "time/", "eval/", "train/loss", "train/learning_rate")
"""TensorBoard tags the run loop writes for every learner (SB3's own logger skips them)."""


class Learner(ABC):
    """A learning algorithm: ``loop.record_step`` each step, ``loop.at_safe_point()`` often."""

    model_name: ClassVar[str]  # the final model's file name in the run directory: model.keras
    has_epsilon: bool = True  # whether it explores by ε (not PPO, A2C)
    framework_bytes: ClassVar[int] = 0  # its framework's own peak memory in a run (measured)
    memory_setting: ClassVar[str] = ""  # the setting that sizes its replay (named when short)

    def __init__(self, cfg: TrainConfig, trust_pickle: bool = False) -> None:
        self.cfg, self.trust_pickle = cfg, trust_pickle

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
    def get_state(self) -> tuple[Arrays, dict[str, Any]]:
        """Everything needed to resume exactly: ``(arrays by file stem, JSON-ready meta)``."""

    @abstractmethod
    def set_state(self, arrays: Arrays, meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (ValueError or KeyError if it does not fit)."""

    @abstractmethod
    def save_model(self, path: Path) -> None:
        """Write the playing model to ``path``."""

    def close(self) -> None:
        """Release the learner's environments (``self.env``, where it has one)."""
        if hasattr(self, "env"):
            self.env.close()


@dataclass
class TrainResult:
    """What a finished (or interrupted) run did."""

    games: int
    steps: int
    wins: int
    wall_time: float
    interrupted: bool = False
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    final_eval: EvalResult | None = None  # the kept model on the test games
    signum: int | None = None  # the signal that stopped the run
    best: dict[str, Any] | None = None  # the best validation evaluation (best.json)
    eval_model: str | None = None  # the model file final_eval played (best.keras...)

    @property
    def exit_code(self) -> int:
        """0, or 128 + the signal that stopped the run (the shell's convention)."""
        return 128 + self.signum if self.signum else 0


class RunLoop:
    """One run of ``learner`` in the locked ``rd``; ``progress``: bar, lines (False), None: auto."""

    def __init__(
        self,
        rd: RunDir,
        cfg: TrainConfig,
        learner: Learner,
        progress: bool | None = None,
        on_evaluation: Callable[[dict[str, Any]], bool | None] | None = None,
    ) -> None:
        self.rd, self.cfg, self.learner = rd, cfg, learner
        self.learner_cls, self.progress, self.on_evaluation = type(learner), progress, on_evaluation
        self.second_signal_exit: str | None = None  # the CLI's: a second signal prints it, exits
        self.best_path = rd.path / learner.best_name()
        self.steps = self.games = self.wins = self.loss_count = 0
        self.elapsed = self.loss_sum = self.train_cpu = 0.0
        self.evaluations: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.recent: deque[tuple[float, float, int]] = deque(maxlen=100)  # won, reward, length
        self.game_reward = np.zeros(cfg.env.num_envs)
        self.game_length = np.zeros(cfg.env.num_envs, dtype=np.int64)
        self.metrics_bytes = 0  # metrics.tsv is cut back to this (a checkpoint's size)
        self.checkpointed = (0, 0)  # games and steps at the last checkpoint
        self.signum: int | None = None
        self.fresh = True  # config.toml is (re)written

    def save_checkpoint(self) -> Path:
        """Write a checkpoint now (at a safe point); its time is not training time."""
        with self._not_training(), signals_held():
            self.metrics.flush()
            arrays, meta = self.learner.get_state()
            arrays["loop"] = {"game_reward": self.game_reward, "game_length": self.game_length}
            if self.best is not None and self.best_path.is_file():
                arrays["best_model"] = {"data": np.fromfile(self.best_path, dtype=np.uint8)}
            state = {key: getattr(self, key) for key in SAVED} | {
                "config": dataclasses.asdict(self.cfg),
                "recent": list(self.recent),
                "metrics_bytes": self.rd.metrics_path.stat().st_size,
                "learner": meta,
            }
            name = f"ckpt-g{self.games:08d}-s{self.steps:012d}"
            path = self.rd.save_checkpoint(name, arrays, state)
        self.checkpointed = (self.games, self.steps)
        return path

    def restore(self, checkpoint: Path, arrays: dict[str, Any], state: dict[str, Any]) -> None:
        """Continue from a checkpoint's ``(arrays, state)`` (CheckpointError: it does not fit)."""
        self.fresh = False
        try:
            self.learner.set_state(arrays, state["learner"])
            self.game_reward[:] = arrays["loop"]["game_reward"]
            self.game_length[:] = arrays["loop"]["game_length"]
            for key in (*SAVED, "metrics_bytes"):
                setattr(self, key, state[key])
            self.recent.extend(tuple(r) for r in state["recent"])
            best_model = arrays.get("best_model", {}).get("data")
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(
                f"checkpoint {checkpoint} does not fit this run ({type(e).__name__}: {e})"
            ) from e
        self.checkpointed = (self.games, self.steps)
        # The checkpoint's best model, not a later one from a future it never saw.
        if self.best is None or best_model is None:
            self.best = None
            self.best_path.unlink(missing_ok=True)
            (self.rd.path / "best.json").unlink(missing_ok=True)
        else:
            data = best_model.tobytes()  # not ndarray.tofile: its OSError has no errno (full disk)
            self.rd.write_file_atomic(self.best_path.name, lambda p: p.write_bytes(data))
            self.rd.write_json("best.json", self.best)

    def record_step(
        self,
        rewards: np.ndarray,  # [N]
        ended: np.ndarray,  # [N] bool: the game ended on this step
        epsilon: float,
        loss: float | None = None,  # mean loss of this step's gradient steps (None: none taken)
        learning_rate: float | None = None,  # the optimizer's now (None: not reported)
    ) -> None:
        """Count one vector step; where games ended: metrics rows, TensorBoard, progress."""
        self.steps += len(rewards)
        self.game_reward += rewards
        self.game_length += 1
        if loss is not None:
            self.loss_sum += loss
            self.loss_count += 1
        if not ended.any():
            return
        self._tick()
        fps = (self.steps - self._steps0) / max(self.elapsed - self._elapsed0, 1e-9)
        mean_loss = self.loss_sum / self.loss_count if self.loss_count else 0.0
        for i in np.flatnonzero(ended):
            reward = self.game_reward[i]  # +1 per ball caught, -1 per ball missed
            self.games += 1
            self.wins += int((reward + self.cfg.env.balls_per_game) // 2)
            self.recent.append((float(reward > 0), float(reward), int(self.game_length[i])))
            win_rate = float(np.mean([r[0] for r in self.recent]))
            row = (self.games, mean_loss, self.wins, epsilon, self.steps, fps, win_rate)
            self.metrics.write(metrics_row(*row, self.elapsed, reward))
        self.game_reward[ended] = 0.0
        self.game_length[ended] = 0
        _, mean_reward, mean_length = np.mean(self.recent, axis=0)
        scalars = {"rollout/ep_rew_mean": mean_reward, "rollout/ep_len_mean": mean_length}
        scalars |= {"rollout/win_rate_100": win_rate, "time/fps": fps, "time/episodes": self.games}
        shown = {"games": self.games, "win": f"{100 * win_rate:.0f}%"}
        if self.learner.has_epsilon:
            scalars["rollout/exploration_rate"], shown["eps"] = epsilon, f"{epsilon:.3f}"
        if self.loss_count:
            scalars["train/loss"] = mean_loss
        if learning_rate is not None:
            scalars["train/learning_rate"] = learning_rate
        self.writer.scalars(self.steps, scalars)
        self.loss_sum, self.loss_count = 0.0, 0
        self.bar.update(self.steps, **shown, fps=f"{fps:.0f}")

    def at_safe_point(self) -> bool:
        """Evaluate and checkpoint every ``run.eval_every`` games; whether to stop now."""
        r = self.cfg.run
        self._tick()
        stop = self.signum is not None or self.steps >= r.total_steps
        # safe points come at game boundaries or between them, so a multiple may be passed
        due = r.eval_every > 0 and self.games // r.eval_every > self.checkpointed[0] // r.eval_every
        if due and r.eval_games:
            result, told_to_stop = self._evaluate_now()
            if told_to_stop or 0 < r.target_win_rate <= result.win_rate:
                stop = True
                r.total_steps = min(r.total_steps, self.steps)  # a resumed run stops here too
        if (due or stop) and self.checkpointed != (self.games, self.steps):
            self.save_checkpoint()
        return stop

    def evaluate(self, games: int, seed: int = VALIDATION_SEED) -> EvalResult:
        """The greedy policy on the validation games by default (every start, where it decides)."""
        kwargs = self.cfg.env.game_kwargs() | {"every_start": seed == VALIDATION_SEED}
        return evaluate(self.learner.greedy_policy, games=games, seed=seed, **kwargs)

    def evaluate_kept(self, games: int) -> tuple[str, EvalResult]:
        """The kept model (``best.*``, else the final one) on the test games: name, result."""
        if self.best is None or not self.best_path.is_file():
            return self.learner_cls.model_name, self.evaluate(games, TEST_SEED)
        game, name = self.cfg.env.game_kwargs(), self.best_path.name  # trusted: this run's own
        kept = model_agent(self.best_path, name, game, self.cfg.algo, trust_sb3=True)
        return name, evaluate(kept.policy, games, TEST_SEED, **kept.env_kwargs)

    def _evaluate_now(self) -> tuple[EvalResult, bool]:
        """Evaluate on the validation games; the result, and whether on_evaluation said stop."""
        with self._not_training():
            result = self.evaluate(self.cfg.run.eval_games)
            scores = result.to_dict()
            scores["eval_games"] = scores.pop("games")
            record = {"games": self.games, "steps": self.steps, "wall_time": self.elapsed}
            record |= {"train_cpu_s": self.train_cpu, "seed": VALIDATION_SEED}
            record |= {"split": "validation", **scores}
            best = self.best is None or result.win_rate >= self.best["win_rate"]
            if best:  # ties go to the later model
                with signals_held():
                    self.rd.write_file_atomic(self.best_path.name, self.learner.save_model)
                    self.best = {"model": self.best_path.name, **record}
                    self.rd.write_json("best.json", self.best)
            self.evaluations.append({**record, "best": best})
            self.rd.write_json("evals.json", self.evaluations)
            low, high = result.ci95
            scalars = {"eval/mean_reward": result.mean_reward, "eval/win_rate": result.win_rate}
            scalars |= {"eval/win_rate_ci95_low": low, "eval/win_rate_ci95_high": high}
            self.writer.scalars(self.steps, {"eval/mean_ep_length": result.mean_length, **scalars})
            mark = " (best so far)" if best else ""
            where = f"game {self.games} step {self.steps}"
            self.bar.write(f"{where}: validation {result.summary()}{mark}")
            stop = self.on_evaluation is not None and bool(self.on_evaluation(self.evaluations[-1]))
        return result, stop

    def _tick(self) -> None:
        """Add the wall and CPU seconds (all threads) since the last tick to the training time."""
        wall, cpu = time.perf_counter(), time.process_time()
        self.elapsed += wall - self._clock[0]
        self.train_cpu += cpu - self._clock[1]
        self._clock = (wall, cpu)

    @contextlib.contextmanager
    def _not_training(self) -> Iterator[None]:
        """Leave the block's wall and CPU seconds out of the training time."""
        self._tick()
        try:
            yield
        finally:
            self._clock = (time.perf_counter(), time.process_time())

    def run(self) -> TrainResult:
        """Train until the budget, the target or a signal stops the run; test the kept model."""
        try:
            with space_checked(str(self.rd.path)):
                self._train()
            final_eval, model = None, None
            if self.signum is not None:
                where = f"game {self.games}, step {self.steps}"
                name = signal.Signals(self.signum).name
                self.bar.write(f"stopped by {name}: checkpoint written at {where}")
            elif self.cfg.run.eval_games:
                model, final_eval = self.evaluate_kept(self.cfg.run.eval_games)
                record = {"model": model, "seed": TEST_SEED, "split": "test"}
                self.rd.write_json("eval.json", record | final_eval.to_dict())
        finally:
            self.learner.close()
            self.rd.release_lock()
        counts = (self.games, self.steps, self.wins, self.elapsed, self.signum is not None)
        return TrainResult(*counts, self.evaluations, final_eval, self.signum, self.best, model)

    def _train(self) -> None:
        if self.fresh:
            self.rd.write_file_atomic("config.toml", lambda p: p.write_text(to_toml(self.cfg)))
        self.rd.cut_metrics(self.metrics_bytes)
        self.metrics = self.rd.open_metrics()
        if self.evaluations:
            self.rd.write_json("evals.json", self.evaluations)  # as of the checkpoint
        self.writer = TensorBoard(self.rd.tb_path)
        self.bar = Progress(self.cfg.run.total_steps, enabled=self.progress, initial=self.steps)
        self._clock = (time.perf_counter(), time.process_time())  # the last tick
        self._steps0, self._elapsed0 = self.steps, self.elapsed
        try:
            with stop_signals_to(self._on_signal):
                self.learner.run(self)
                if self.checkpointed != (self.games, self.steps):
                    self.save_checkpoint()  # the learner's own loop ended (SB3's budget)
            if self.signum is None:
                self.bar.finish(self.steps)
                with signals_held():
                    self.rd.write_file_atomic(self.learner_cls.model_name, self.learner.save_model)
        finally:
            self.bar.close()
            with contextlib.suppress(Exception):  # a full disk is reported once, by the caller
                self.writer.close()
            with contextlib.suppress(OSError):
                self.metrics.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is None:  # the first: stop at the next safe point
            self.signum = signum
            if signum == signal.SIGHUP:
                self.bar.mute()  # the terminal is gone
            return
        if self.second_signal_exit is None:  # the second: leave now, the checkpoint stays
            raise SystemExit(128 + signum)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os.write(2, (self.second_signal_exit + "\n").encode())
        os._exit(128 + signum)


@contextlib.contextmanager
def stop_signals_to(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Route the stop signals to ``handler``, but those ignored (``nohup``: SIGHUP)."""
    try:
        routed = [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
        old = {s: signal.signal(s, handler) for s in routed}
    except ValueError:  # not the main thread
        old = {}
    try:
        yield
    finally:
        for s, previous in old.items():
            signal.signal(s, previous)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold the stop signals back while a checkpoint or model is written (delivered after)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
