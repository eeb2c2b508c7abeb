"""The one run loop: everything a training run does besides learning.

:class:`RunLoop` owns a run directory (and its lock), the per-game metrics rows,
TensorBoard scalars and the progress bar, the evaluations, the checkpoints, the
stop rules (steps, games, time, target win rate), the signals and the final
model. A :class:`~catchrl.learner.Learner` plugs in (the Keras DQN, SB3, RLlib).

**Validation and test.** Training-time evaluations play the validation games
(:data:`~catchrl.evaluation.VALIDATION_SEED`); every decision of the run (the
target's early stop, the kept best model) is made on them. The final evaluation
(``eval.json``) plays the test games (:data:`~catchrl.evaluation.TEST_SEED`) with
the kept model: ``best.keras`` (``best.zip``...) and ``best.json``, written at each
evaluation scoring at least the best so far and carried in the checkpoint.

**Signals.** SIGINT, SIGTERM and SIGHUP stop the run at the next safe point with a
checkpoint (mid-game if need be) and exit code 128 + the signal. A second signal
stops at once (:class:`~catchrl.signals.RunInterrupted`, or ``os._exit`` where
:attr:`RunLoop.second_signal_exit` is set); checkpoints are written with the
signals blocked, so the last one stays complete either way.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.config import TrainConfig, config_to_dict, to_toml
from catchrl.errors import CheckpointError, DiskFullError
from catchrl.evaluation import TEST_SEED, VALIDATION_SEED, EvalResult, evaluate
from catchrl.learner import Learner, StepLearner, StepReport, TrainResult
from catchrl.monitor import Progress, ScalarWriter
from catchrl.resume import check_memory, open_config
from catchrl.rundir import RunDir, balls_caught, checkpoint_name, metrics_row
from catchrl.signals import RunInterrupted, exit_now, handled, signals_blocked

__all__ = ["Learner", "RunLoop", "StepLearner", "StepReport", "TrainResult"]


class RunLoop:
    """One training run in a run directory, with a learner plugged in.

    Args:
        cfg: The run's config (None on resume: the checkpoint's config is used).
        run_dir: The run directory.
        learner_for: Gives the learner class for a config (its ``algo``).
        resume: Continue from the latest checkpoint in ``run_dir``.
        progress: Progress bar (True), plain lines (False), or bar on a TTY (None).
        resume_overrides: ``--set run.KEY=VALUE`` changes on resume (only
            :data:`catchrl.resume.RESUMABLE` keys).
        trust_pickle: Passed to the learner: may its checkpoint be unpickled.
        on_evaluation: Called with each training-time evaluation's record (the
            dict appended to ``evals.json``) once it is written; a study
            (Ray Tune) reports it from there. A true return stops the run there
            (as a reached target does). Its time is not training time.
        keep_checkpoints: Complete checkpoints kept (1: the latest).

    Raises:
        RunDirError: The folder is in use, not a run, or holds a run already.
        CheckpointError: The checkpoint is corrupt or for another setup.
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
        """Set (``catchrl train``): a second stop signal prints this and ends the process with
        ``os._exit`` (unwinding from inside TensorFlow once corrupted the heap); None (a
        library caller): it raises :class:`RunInterrupted`."""
        self.resume = resume
        self.progress_mode = progress
        self.rd.acquire_lock()
        try:
            self.cfg, self.checkpoint, ckpt = open_config(self.rd, cfg, resume, resume_overrides)
            self.fresh = ckpt is None
            self.learner_cls = learner_for(self.cfg)
            check_memory(self.cfg, self.learner_cls.estimate_bytes(self.cfg))
            self._init_counters()
            self.learner = self.learner_cls(self.cfg, self.rd, trust_pickle=trust_pickle)
            self.has_epsilon = self.learner.has_epsilon
            if ckpt is not None:
                self._restore(*ckpt)
        except BaseException:
            self.rd.release_lock()
            raise

    def _init_counters(self) -> None:
        self.steps = self.games = self.wins = self.loss_count = 0
        self.elapsed = self.loss_sum = self._train_cpu = 0.0
        self.recent: deque[float] = deque(maxlen=100)
        self.evaluations: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        """The best validation evaluation's record (None: no evaluation yet)."""
        self.game_reward = np.zeros(self.cfg.env.num_envs, dtype=np.float64)
        self.metrics_offset: int | None = 0 if self.resume else None
        self.signum: int | None = None
        # games at the last evaluation / periodic checkpoint (what is due counts from these)
        self.last_eval_games = self.last_ckpt_games = 0
        self._last_ckpt: tuple[int, int] | None = None

    def _state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        arrays, meta = self.learner.get_state()
        arrays["loop"] = {"game_reward": self.game_reward.copy()}
        if self.best is not None and self.best_path.is_file():
            arrays["best_model"] = {"data": np.fromfile(self.best_path, dtype=np.uint8)}
        state = {k: getattr(self, k) for k in _SAVED} | {
            "config": config_to_dict(self.cfg),
            "algo": self.cfg.algo,
            "train_cpu_s": self._train_cpu_now(),
            "recent": list(self.recent),
            "metrics_bytes": self.rd.metrics_path.stat().st_size,
            "learner": meta,
        }
        return arrays, state

    def _restore(self, arrays: dict[str, dict[str, np.ndarray]], state: dict[str, Any]) -> None:
        try:
            self.learner.set_state(arrays, state["learner"])
            self.game_reward[:] = arrays["loop"]["game_reward"]
            for key in _SAVED:
                setattr(self, key, state[key])
            self._train_cpu, self.metrics_offset = state["train_cpu_s"], int(state["metrics_bytes"])
            self.recent.extend(state["recent"])
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
        """Write a checkpoint now (at a safe point); its time is not training time."""
        with self._not_training(), signals_blocked():
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
        t0, cpu0 = time.perf_counter(), time.process_time()
        paused0, cpu_paused0 = self._paused, self._cpu_paused
        try:
            yield
        finally:
            self._paused = paused0 + time.perf_counter() - t0
            self._cpu_paused = cpu_paused0 + time.process_time() - cpu0

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
            win_rate_100 = float(np.mean(self.recent))
            row = (self.games, loss, self.wins, eps, self.steps, self._rate, win_rate_100)
            self.metrics_file.write(metrics_row(*row, self.elapsed, self.game_reward[i]))
        self.game_reward[ended] = 0.0
        self.loss_sum, self.loss_count = 0.0, 0
        win_rate = float(np.mean(self.recent))
        scalars = {
            "rollout/win_rate_100": win_rate,
            "train/loss": loss,
            "time/steps_per_s": self._rate,
            "time/games": self.games,
        }
        if self.has_epsilon:
            scalars["train/epsilon"] = eps
        self.writer.scalars(self.steps, scalars)
        shown = {"games": self.games, "win": f"{100 * win_rate:.0f}%"}
        if self.has_epsilon:
            shown["eps"] = f"{eps:.3f}"
        self.bar.update(self.steps, **shown, sps=f"{self._rate:.0f}")

    def at_safe_point(self) -> bool:
        """Evaluate and checkpoint when due; whether the run must stop now."""
        r = self.cfg.run
        self.elapsed = time.perf_counter() - self._t_start - self._paused
        stop = False
        if r.eval_games and _crossed(self.last_eval_games, self.games, r.eval_every):
            self.last_eval_games = self.games
            result, told = self._evaluate_now()
            stop = told or (r.target_win_rate > 0 and result.win_rate >= r.target_win_rate)
            if stop:  # a resumed run keeps its outcome: the budget ends here
                r.total_steps = min(r.total_steps or self.steps, self.steps)
                r.total_games = self.games
        stop = stop or self.signum is not None or self.budget_spent()
        due = _crossed(self.last_ckpt_games, self.games, r.checkpoint_every)
        if due:
            self.last_ckpt_games = self.games
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
            result = self.evaluate(self.cfg.run.eval_games)
            record = result.to_dict()
            record["eval_games"] = record.pop("games")
            entry = {"games": self.games, "steps": self.steps, "wall_time": self.elapsed}
            entry |= {"train_cpu_s": cpu, "seed": VALIDATION_SEED, "split": "validation", **record}
            best = self.best is None or result.win_rate >= self.best["win_rate"]
            if best:  # ties go to the later model
                with signals_blocked():
                    self.rd.write_file_atomic(self.best_path.name, self.learner.save_model)
                    self.best = {"model": self.best_path.name, **entry}
                    self.rd.write_json("best.json", self.best)
            self.evaluations.append({**entry, "best": best})
            self.writer.scalars(self.steps, {"eval/win_rate": result.win_rate})
            self.rd.write_json("evals.json", self.evaluations)
            mark = " (best so far)" if best else ""
            self.bar.write(
                f"game {self.games} step {self.steps}: validation {result.summary()}{mark}"
            )
            told = self.on_evaluation is not None and bool(self.on_evaluation(self.evaluations[-1]))
            return result, told

    def _train_cpu_now(self) -> float:
        """CPU seconds (all threads) spent training so far, evaluations left out."""
        return self._train_cpu + time.process_time() - self._cpu0 - self._cpu_paused

    def close(self) -> None:
        """Release the learner and the run's lock without training (``run`` does both)."""
        self.learner.close()
        self.rd.release_lock()

    def run(self) -> TrainResult:
        """Train until a budget, the target or a signal stops the run (the lock held till then)."""
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
        self._paused, self._cpu0, self._cpu_paused = 0.0, time.process_time(), 0.0
        try:
            with handled(self._on_signal):
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
        final_eval, model = None, None
        interrupted = self.signum is not None
        if interrupted:
            self.bar.write(
                f"stopped by {signal.Signals(self.signum).name}: checkpoint written "
                f"at game {self.games}, step {self.steps}"
            )
        else:
            with signals_blocked():
                self.rd.write_file_atomic(self.learner_cls.model_name, self.learner.save_model)
            if self.cfg.run.eval_games:
                model, final_eval = self.evaluate_kept(self.cfg.run.eval_games)
                record = {"model": model, "seed": TEST_SEED, "split": "test"}
                self.rd.write_json("eval.json", record | final_eval.to_dict())
        counts = (self.games, self.steps, self.wins, self.elapsed, interrupted)
        return TrainResult(*counts, self.evaluations, final_eval, self.signum, self.best, model)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # the second one: leave now, the checkpoint stays
            if self.second_signal_exit is not None:
                exit_now(self.second_signal_exit, 128 + signum)
            raise RunInterrupted(signum)
        self.signum = signum
        if signum == signal.SIGHUP:
            self.bar.mute()  # the terminal is gone


_COUNTS = ("steps", "games", "wins", "elapsed", "loss_sum", "loss_count")
_RECORDS = ("evaluations", "best", "last_eval_games", "last_ckpt_games")
_SAVED = _COUNTS + _RECORDS
"""The loop's counters and records a checkpoint holds as they are."""


def _crossed(last: int, games: int, every: int) -> bool:
    """Whether a multiple of ``every`` games was passed since ``last`` (``every = 0``: never)."""
    return every > 0 and games // every > last // every
