"""Stable-Baselines3 algorithms as learners of the run loop, in SB3's own ``learn()``.

A callback reports each vector step and stops at a rollout's start, where SB3's state is whole.
A checkpoint (SB3's zip and replay, the games, the RNGs) resumes exactly, with ``--sb3``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from catchrl.agents import sb3
from catchrl.config import TrainConfig
from catchrl.errors import CheckpointError
from catchrl.learners import Learner
from catchrl.runloop import LOOP_TAGS, RunLoop


class SB3Learner(Learner):
    """An SB3 algorithm (``cfg.algo``, an ``sb3-*`` name of ``LEARNERS``) on the native env."""

    model_name = "model.zip"
    framework_bytes = 340 << 20  # PyTorch + SB3: peak RSS 331 MiB, fast-state, buffer 1,000

    def __init__(self, cfg: TrainConfig, trust_pickle: bool = False) -> None:
        super().__init__(cfg, trust_pickle)
        from catchrl.agents.sb3_env import make_catch_vec_env  # SB3 after the memory check

        self.has_epsilon = cfg.algo in sb3.OFF_POLICY
        sb3.set_torch_threads()
        self.env = make_catch_vec_env(cfg.env.num_envs, seed=cfg.run.seed, **cfg.env.game_kwargs())
        self.model = sb3.make_sb3_model(cfg.algo, self.env, cfg.sb3, seed=cfg.run.seed)
        self.resumed = False
        self.last_loss: float | None = None
        self.pending_logs: dict[str, float] = {}  # recorded by SB3 before the checkpoint

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The games' buffers and SB3's replay buffer."""
        space = cfg.env.observation_space()
        stored = 1 if cfg.sb3.get("optimize_memory_usage") else 2  # obs (and next_obs)
        per_item = int(np.prod(space.shape)) * space.dtype.itemsize * stored
        return cfg.env.games_bytes() + int(cfg.sb3.get("buffer_size") or 0) * per_item

    def run(self, loop: RunLoop) -> None:
        """SB3's ``learn()`` for what is left of the step budget, reporting to ``loop``."""

        def write(step: int, scalars: dict[str, float]) -> None:  # SB3's own, not the loop's
            self.last_loss = scalars.get("train/loss", self.last_loss)
            loop.writer.scalars(
                step, {k: v for k, v in scalars.items() if not k.startswith(LOOP_TAGS)}
            )

        def on_step(model: Any, step: dict[str, Any]) -> None:
            rewards = np.asarray(step["rewards"], dtype=np.float64)
            ended = np.asarray(step["dones"], dtype=bool)
            epsilon = float(getattr(model, "exploration_rate", 0.0))
            rate = float(model.lr_schedule(model._current_progress_remaining))
            loop.record_step(rewards, ended, epsilon, self.last_loss, rate)

        self.model.set_logger(sb3.sb3_logger(write))
        for key, value in self.pending_logs.items():  # SB3 dumps them at its next dump
            self.model.logger.record(key, value)
        self.pending_logs = {}
        remaining = loop.cfg.run.total_steps - loop.steps
        if remaining <= 0 or loop.at_safe_point():
            return
        callback = sb3.sb3_callback(loop.at_safe_point, on_step)
        self.model.learn(remaining, callback=callback, reset_num_timesteps=not self.resumed)

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The model's deterministic action for each observation (the evaluation policy)."""
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """SB3's zip and replay buffer, the game's state and the RNGs SB3 draws from."""
        env = self.env.venv_native.get_state()
        arrays, sb3_meta = sb3.sb3_state(self.model, self.cfg.algo)
        arrays["env"] = env["arrays"]
        logger = getattr(self.model, "_logger", None)  # set by run()
        logged = logger.name_to_value.items() if logger is not None else ()
        numbers = {k: v for k, v in logged if isinstance(v, (int, float, np.number))}
        meta = {
            "env": env["meta"],
            "rng": sb3.rng_states(),
            **sb3_meta,
            "last_loss": self.last_loss,  # what the metrics rows show until SB3 logs again
            # on-policy SB3 dumps before train(): the last train()'s values are not written yet
            "pending_logs": {k: float(v) for k, v in numbers.items() if not isinstance(v, bool)},
        }
        return arrays, meta

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state`; refused (before unpickling) unless ``trust_pickle``."""
        if not self.trust_pickle:
            raise CheckpointError(
                f"resuming this {self.cfg.algo} run unpickles the checkpoint's SB3 files, "
                "which can run code; pass --sb3 if you trust this run directory"
            )
        device = self.cfg.sb3.get("device", "cpu")
        self.model = sb3.load_sb3_state(arrays, meta, self.cfg.algo, self.env, device)
        self.model._last_obs = self.env.venv_native.set_state(
            {"arrays": arrays["env"], "meta": meta["env"]}
        )
        sb3.set_rng_states(meta["rng"])
        self.last_loss = meta["last_loss"]
        self.pending_logs = meta["pending_logs"]
        self.resumed = True

    def save_model(self, path: Path) -> None:
        """Write the SB3 ``.zip`` (load it with ``catchrl eval/watch --sb3``)."""
        self.model.save(path)
