"""``catchrl train --algo sb3-...``: Stable-Baselines3 agents in catchrl's run directories.

The same run directory as the Keras DQN (:mod:`catchrl.training`):
``config.toml`` (with ``algo`` and the full ``[sb3]`` table actually used),
``metrics.tsv`` (one row per game, the same columns, written by an SB3
callback), ``tb/`` (SB3's own ``train/…``, ``rollout/…``, ``time/…`` scalars
plus catchrl's, through :class:`~catchrl.monitor.ScalarWriter`), checkpoints
written atomically by :class:`~catchrl.rundir.RunDir` (the SB3 ``.zip`` and,
for DQN / QR-DQN, the pickled replay buffer, each stored as a byte array),
``evals.json`` / ``eval.json`` and the final ``model.zip``.

Checkpoints are taken at game boundaries (all games are the same length and
start together). ``--resume`` reloads the latest one and continues with
``reset_num_timesteps=False`` (ε schedule, learning-rate progress and step
counts carry on). Unlike the Keras DQN's it is not bit-exact: SB3 restarts
the games (seeded with ``run.seed + games played``) and an on-policy
algorithm's half-collected rollout is dropped.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.cli import UserError
from catchrl.config import TrainConfig, config_from_dict, config_to_dict, to_toml
from catchrl.evaluation import EvalResult, evaluate
from catchrl.monitor import Progress, ScalarWriter
from catchrl.rundir import CheckpointError, RunDir, balls_caught, metrics_row

__all__ = ["SB3TrainResult", "SB3Trainer", "resolve_sb3_config", "run_sb3", "set_torch_threads"]


@dataclass
class SB3TrainResult:
    """What a finished (or interrupted) SB3 run did."""

    games: int
    steps: int
    wins: int
    wall_time: float
    interrupted: bool = False
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    final_eval: EvalResult | None = None


def resolve_sb3_config(args: argparse.Namespace) -> TrainConfig:
    """Preset/TOML/``--set`` config with ``algo`` set and ``[sb3]`` merged with the defaults.

    Raises:
        UserError: Unknown algorithm, SB3 missing, or an ``[sb3]`` option the
            algorithm does not take.

    """
    from catchrl.agents.sb3 import ALGOS, SB3ConfigError, SB3NotInstalled, sb3_kwargs
    from catchrl.commands.train import resolve_config

    if args.algo not in ALGOS:
        raise UserError(
            f"unknown --algo {args.algo!r}; choose dqn (catchrl's Keras DQN) or {', '.join(ALGOS)}"
        )
    cfg = resolve_config(args)
    cfg.algo = args.algo
    try:
        cfg.sb3 = sb3_kwargs(cfg.algo, cfg.env.obs_type, cfg.sb3, cfg.env.num_envs)
    except (SB3ConfigError, SB3NotInstalled) as e:
        raise UserError(str(e)) from e
    return cfg


def run_sb3(args: argparse.Namespace) -> int:
    """``catchrl train --algo sb3-*``: train into a run directory, print the outcome."""
    from catchrl.agents.sb3 import SB3ConfigError, SB3NotInstalled
    from catchrl.commands.train import default_run_dir

    cfg = resolve_sb3_config(args)
    if args.print_config:
        print(to_toml(cfg), end="")
        return 0
    if args.resume and args.run_dir is None:
        raise UserError("--resume needs --run-dir")
    run_dir = args.run_dir or default_run_dir(cfg.algo, cfg.env.obs_type)
    try:
        trainer = SB3Trainer(
            cfg, run_dir, resume=args.resume, progress=False if args.no_progress else None
        )
        result = trainer.run()
    except (CheckpointError, SB3ConfigError, SB3NotInstalled) as e:
        raise UserError(str(e)) from e
    print(f"run directory: {run_dir}")
    print(f"trained {result.games} games, {result.steps} env steps, {result.wall_time:.1f} s")
    if result.interrupted:
        print(
            f"interrupted: resume with `catchrl train --algo {cfg.algo} --run-dir {run_dir} "
            "--resume`"
        )
        return 130
    if result.final_eval is not None:
        print(f"greedy evaluation: {result.final_eval.summary()}")
    return 0


def set_torch_threads(obs_type: str) -> int:
    """Torch's intra-op threads: ``CATCHRL_TORCH_THREADS`` if set, else 1.

    Measured on a 2-core machine shared with other jobs: SB3 DQN ran 13x
    faster on ``state`` (MLP) and 8x faster on ``pixels`` (NatureCNN) with one
    thread than with torch's default of one per core, whose threads spin-wait
    for each other when the cores are busy.
    """
    import torch

    threads = int(os.environ.get("CATCHRL_TORCH_THREADS", "0") or 0)
    torch.set_num_threads(threads if threads > 0 else 1)
    return torch.get_num_threads()


class _NoCloseBytesIO(io.BytesIO):
    """SB3's savers close the file they are given; keep the bytes readable."""

    def close(self) -> None:
        pass


class SB3Trainer:
    """One SB3 training run in a run directory (the SB3 twin of :class:`catchrl.training.Trainer`).

    Args:
        cfg: The run's config with ``algo`` and the resolved ``[sb3]`` table (on
            resume the saved config is used, except ``run.total_steps`` /
            ``run.total_games``, which may extend it).
        run_dir: The run directory.
        resume: Continue from the latest checkpoint in ``run_dir``.
        progress: Progress bar (True), plain lines (False), or bar on a TTY (None).

    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.rd = RunDir(run_dir)
        self.resume = resume
        self.progress_mode = progress
        self._ckpt: tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]] | None = None
        if resume:
            path = self.rd.latest_checkpoint()
            if path is None:
                raise CheckpointError(f"--resume: no checkpoint in {str(self.rd.path)!r}")
            arrays, state = RunDir.load_checkpoint(path)
            saved = config_from_dict(state["config"])
            if saved.algo != cfg.algo:
                raise CheckpointError(
                    f"{self.rd.path} was trained with --algo {saved.algo}, not {cfg.algo}"
                )
            saved.run.total_steps, saved.run.total_games = cfg.run.total_steps, cfg.run.total_games
            cfg = saved
            self._ckpt = (arrays, state)
        elif self.rd.latest_checkpoint() is not None or self.rd.metrics_path.exists():
            raise CheckpointError(
                f"run directory {str(self.rd.path)!r} already holds a run; "
                "pass --resume to continue it or choose another --run-dir"
            )
        self.cfg = cfg
        self.steps = self.games = self.wins = 0
        self.elapsed = 0.0
        self.recent: deque[float] = deque(maxlen=100)
        self.evaluations: list[dict[str, Any]] = []
        self.metrics_offset: int | None = None
        self.stop_requested = False
        self.stopped_early = False
        self.last_loss = 0.0
        self.paused = 0.0
        """Seconds spent evaluating and checkpointing: not training time."""
        if self._ckpt is not None:
            _, state = self._ckpt
            self.steps, self.games, self.wins = state["steps"], state["games"], state["wins"]
            self.elapsed = state["elapsed"]
            self.recent.extend(state["recent"])
            self.evaluations = state["evaluations"]
            self.metrics_offset = state["metrics_bytes"]
        self._build()

    # -- setup -------------------------------------------------------------------

    def _build(self) -> None:
        from catchrl.agents.sb3 import load_sb3_model, make_catch_vec_env, make_sb3_model

        c = self.cfg
        set_torch_threads(c.env.obs_type)
        self.env = make_catch_vec_env(
            c.env.num_envs, seed=c.run.seed + self.games, **c.env.game_kwargs()
        )
        if self._ckpt is None:
            self.model = make_sb3_model(c.algo, self.env, c.sb3, seed=c.run.seed, device="cpu")
            return
        arrays, _ = self._ckpt
        try:
            zip_bytes = arrays["sb3_model"]["zip"].tobytes()
            self.model = load_sb3_model(io.BytesIO(zip_bytes), c.algo, env=self.env)
            if "sb3_replay" in arrays:
                self.model.replay_buffer = pickle.loads(arrays["sb3_replay"]["pkl"].tobytes())
                self.model.replay_buffer.device = self.model.device
        except (KeyError, ValueError, pickle.UnpicklingError) as e:
            raise CheckpointError(
                f"checkpoint does not fit this run ({type(e).__name__}: {e})"
            ) from e
        self._ckpt = None

    def _logger(self, writer: ScalarWriter) -> Any:
        """SB3's logger writing its scalars into our TensorBoard events (no stdout)."""
        from stable_baselines3.common.logger import KVWriter, Logger

        trainer = self

        class _ScalarFormat(KVWriter):
            def write(
                self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0
            ) -> None:
                values = {
                    k: float(v)
                    for k, v in key_values.items()
                    if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                }
                if "train/loss" in values:
                    trainer.last_loss = values["train/loss"]
                writer.scalars(step, values)

        return Logger(folder=None, output_formats=[_ScalarFormat()])

    # -- checkpoints --------------------------------------------------------------

    def save(self) -> Path:
        """Write a checkpoint (model zip, replay buffer, counters) atomically."""
        t0 = time.perf_counter()
        try:
            return self._save()
        finally:
            self.paused += time.perf_counter() - t0

    def _save(self) -> Path:
        from catchrl.agents.sb3 import OFF_POLICY

        self.metrics_file.flush()
        buf = _NoCloseBytesIO()
        self.model.save(buf)
        arrays = {"sb3_model": {"zip": np.frombuffer(buf.getvalue(), dtype=np.uint8)}}
        if self.cfg.algo in OFF_POLICY:
            replay = pickle.dumps(self.model.replay_buffer, protocol=pickle.HIGHEST_PROTOCOL)
            arrays["sb3_replay"] = {"pkl": np.frombuffer(replay, dtype=np.uint8)}
        state = {
            "config": config_to_dict(self.cfg),
            "algo": self.cfg.algo,
            "steps": self.steps,
            "games": self.games,
            "wins": self.wins,
            "elapsed": self.elapsed,
            "recent": list(self.recent),
            "evaluations": self.evaluations,
            "metrics_bytes": self.rd.metrics_path.stat().st_size,
        }
        return self.rd.save_checkpoint(f"ckpt-{self.games:08d}", arrays, state)

    # -- the run ------------------------------------------------------------------

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The model's deterministic action for each observation (the evaluation policy)."""
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    def evaluate(self, games: int) -> EvalResult:
        """Greedy evaluation with the common harness, on the run's game."""
        return evaluate(self.greedy_policy, games=games, **self.cfg.env.game_kwargs())

    def _budget(self) -> int:
        r = self.cfg.run
        per_game = self.env.venv_native.params.max_episode_steps  # 33 a ball (grid: 9)
        by_games = r.total_games * per_game if r.total_games else 0
        budgets = [b for b in (r.total_steps, by_games) if b > 0]
        return min(budgets) if budgets else 10**12  # run.time_limit_s alone ends the run

    def run(self) -> SB3TrainResult:
        """Train until the budget or the target win rate; returns what happened."""
        c = self.cfg
        if not self.resume:
            self.rd.write_config(to_toml(c))
        self.rd.create()
        self.metrics_file = self.rd.open_metrics(truncate_at=self.metrics_offset)
        self.writer = ScalarWriter(self.rd.tb_path)
        self.model.set_logger(self._logger(self.writer))
        total = self._budget()
        self.bar = Progress(total, unit="step", enabled=self.progress_mode, initial=self.steps)
        old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            remaining = total - self.steps
            if remaining > 0:
                self.model.learn(
                    remaining,
                    callback=_make_callback(self),
                    reset_num_timesteps=False,
                    progress_bar=False,
                )
        finally:
            signal.signal(signal.SIGINT, old_handler)
            self.bar.close()
        interrupted = self.stop_requested
        last = self.rd.latest_checkpoint()
        if last is None or last.name != f"ckpt-{self.games:08d}":
            self.save()
        final_eval = None
        if not interrupted:
            tmp = self.rd.path / f"model.zip.tmp{os.getpid()}"
            with open(tmp, "wb") as f:
                buf = _NoCloseBytesIO()
                self.model.save(buf)
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.rd.path / "model.zip")
            if c.run.eval_games:
                final_eval = self.evaluate(c.run.eval_games)
                self.rd.write_json("eval.json", final_eval.to_dict())
        self.metrics_file.close()
        self.writer.close()
        self.env.close()
        return SB3TrainResult(
            self.games,
            self.steps,
            self.wins,
            self.elapsed,
            interrupted,
            self.evaluations,
            final_eval,
        )

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.stop_requested:  # second Ctrl-C: leave now, the last checkpoint stays
            raise KeyboardInterrupt
        self.stop_requested = True

    # -- called by the SB3 callback ----------------------------------------------------

    def on_games_ended(self, rewards: list[float], steps: int, eps: float, rate: float) -> None:
        """Write one metrics row per finished game; TensorBoard and progress once."""
        balls = self.cfg.env.balls_per_game
        for reward in rewards:
            self.games += 1
            self.wins += balls_caught(reward, balls)
            self.recent.append(float(reward > 0))
            self.metrics_file.write(
                metrics_row(
                    self.games,
                    self.last_loss,
                    self.wins,
                    eps,
                    steps,
                    rate,
                    float(np.mean(self.recent)),
                    self.elapsed,
                    reward,
                )
            )
        win_rate = float(np.mean(self.recent))
        self.writer.scalars(
            steps,
            {
                "rollout/win_rate_100": win_rate,
                "train/epsilon": eps,
                "time/steps_per_s": rate,
                "time/games": self.games,
            },
        )
        self.bar.update(
            min(steps, self.bar.total),
            games=self.games,
            win=f"{100 * win_rate:.0f}%",
            eps=f"{eps:.3f}",
            sps=f"{rate:.0f}",
        )

    def at_boundary(self, n: int) -> tuple[bool, bool]:
        """Evaluate / stop checks where every game has just started.

        Returns:
            ``(stop, checkpoint)``: whether training should stop, and whether a
            checkpoint is due.

        """
        r = self.cfg.run
        crossed = lambda every: every and self.games // every != (self.games - n) // every  # noqa: E731
        stop = False
        if crossed(r.eval_every):
            t0 = time.perf_counter()
            result = self.evaluate(r.eval_games)
            self.paused += time.perf_counter() - t0  # evaluation is not training time
            record = result.to_dict()
            record["eval_games"] = record.pop("games")
            self.evaluations.append(
                {"games": self.games, "steps": self.steps, "wall_time": self.elapsed, **record}
            )
            self.writer.scalars(self.steps, {"eval/win_rate": result.win_rate})
            self.rd.write_json("evals.json", self.evaluations)
            self.bar.write(f"game {self.games} step {self.steps}: eval {result.summary()}")
            stop = r.target_win_rate > 0 and result.win_rate >= r.target_win_rate
            self.stopped_early = stop
        if (r.total_games and self.games >= r.total_games) or (
            r.time_limit_s and self.elapsed >= r.time_limit_s
        ):
            stop = True
        stop = stop or self.stop_requested
        return stop, bool(crossed(r.checkpoint_every)) or stop


def _make_callback(trainer: SB3Trainer) -> Any:
    """The SB3 callback feeding :class:`SB3Trainer` (defined lazily: SB3 is optional)."""
    from stable_baselines3.common.callbacks import BaseCallback

    from catchrl.agents.sb3 import OFF_POLICY

    class _RunCallback(BaseCallback):
        """One metrics row per game; evaluation, checkpoints and stops at game boundaries.

        Off-policy algorithms store a step's transitions after the callback, so
        their checkpoints are written at the end of the rollout (``train_freq``
        steps), with the boundary step's transitions in the replay buffer.
        """

        def _on_training_start(self) -> None:
            self.t_start = time.perf_counter() - trainer.elapsed
            self.t_rate, self.steps_at_rate, self.rate = time.perf_counter(), trainer.steps, 0.0
            self.pending_save = False

        def _on_step(self) -> bool:
            trainer.steps = int(self.model.num_timesteps)
            infos = self.locals["infos"]
            ended = [info["episode"]["r"] for info in infos if "episode" in info]
            if not ended:
                return True
            now = time.perf_counter()
            trainer.elapsed = now - self.t_start - trainer.paused
            if now - self.t_rate > 1.0:
                self.rate = (trainer.steps - self.steps_at_rate) / (now - self.t_rate)
                self.t_rate, self.steps_at_rate = now, trainer.steps
            eps = float(getattr(self.model, "exploration_rate", 0.0))
            trainer.on_games_ended(ended, trainer.steps, eps, self.rate)
            if len(ended) != len(infos):
                return True  # (cannot happen: all games have the same length)
            stop, save = trainer.at_boundary(len(infos))
            if save and trainer.cfg.algo in OFF_POLICY and not stop:
                self.pending_save = True
            elif save:
                trainer.save()
            if stop and trainer.stop_requested:
                trainer.bar.write(f"interrupted: checkpoint written at game {trainer.games}")
            return not stop

        def _on_rollout_end(self) -> None:
            if self.pending_save:
                trainer.save()
                self.pending_save = False

    return _RunCallback()
