"""RLlib algorithms (new API stack) as learners of the run loop, in ``Algorithm.train()``.

Each iteration plays whole games, reported step by step afterwards; a checkpoint is RLlib's
state in msgpack (no pickle) and the driver's RNGs: exact with ``num_env_runners = 0``.
Ray starts locally unless ``CATCHRL_RAY_ADDRESS`` names a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from catchrl.agents.rllib_algos import (
    OFF_POLICY,
    ensure_ray,
    epsilon_at,
    get_algo_state,
    make_algo_config,
    result_loss,
    rllib_options,
    set_algo_state,
)
from catchrl.agents.rllib_env import drain, start_games
from catchrl.agents.rllib_policy import greedy_actions, save_rllib_module
from catchrl.agents.sb3 import rng_states, set_rng_states, set_torch_threads
from catchrl.config import TrainConfig
from catchrl.learners import Learner
from catchrl.runloop import RunLoop


class RLlibLearner(Learner):
    """An RLlib algorithm (``cfg.algo``, an ``rllib-*`` name of ``LEARNERS``) on the native env."""

    model_name = "model-rllib.npz"

    def __init__(self, cfg: TrainConfig, trust_pickle: bool = False) -> None:
        super().__init__(cfg, trust_pickle)
        self.options = rllib_options(cfg.algo, cfg.env.obs_type, cfg.rllib, cfg.env.num_envs)
        self.has_epsilon = cfg.algo in OFF_POLICY
        set_torch_threads()
        self.runners = int(self.options.get("num_env_runners", 0))  # 0: sample in this process
        ensure_ray(num_cpus=max(1, self.runners) + 1)
        algo_cfg = make_algo_config(
            cfg.algo,
            self.options,
            cfg.env.game_kwargs(),
            cfg.env.num_envs,
            cfg.run.seed,
            cfg.env.steps_per_game(),
        )
        self.algo_rl = algo_cfg.build_algo()
        self.last_loss: float | None = None

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The games' buffers and DQN's replay (float32)."""
        capacity = cfg.rllib.get("replay_buffer_config", {}).get("capacity", 0)
        shape = cfg.env.observation_space().shape
        return cfg.env.games_bytes() + int(capacity) * int(np.prod(shape)) * 4

    def run(self, loop: RunLoop) -> None:
        """``Algorithm.train()`` until the loop says stop, reporting every step to ``loop``."""
        if loop.at_safe_point():
            return
        boundary = True
        while True:
            if boundary:  # every game ended: the next ones are seeded by the games played
                seed = self.cfg.run.seed + loop.games
                start_games(self.algo_rl, seed, self.cfg.env.num_envs, self.runners)
            self.last_loss = result_loss(self.algo_rl.train())
            rewards, ended, boundary = drain(self.algo_rl, self.runners)
            steps = loop.steps
            for t in range(len(rewards)):
                eps = epsilon_at(self.options, steps) if self.has_epsilon else 0.0
                loop.record_step(rewards[t], ended[t], eps, self.last_loss)
                steps += len(rewards[t])
            if loop.at_safe_point():
                return

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The module's greedy action for each observation (the evaluation policy)."""
        return greedy_actions(self.algo_rl.get_module(), obs)

    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """RLlib's state (and DQN's replay) as msgpack bytes, and the driver's RNGs."""
        packed = np.frombuffer(get_algo_state(self.algo_rl), dtype=np.uint8)
        return {"rllib": {"state": packed}}, {"rng": rng_states()}

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (``ValueError`` if it does not fit this algorithm)."""
        set_algo_state(self.algo_rl, arrays["rllib"]["state"].tobytes())
        set_rng_states(meta["rng"])

    def save_model(self, path: Path) -> None:
        """Write the playing module (load it with ``catchrl eval/watch``)."""
        save_rllib_module(path, self.algo_rl.get_module(), self.cfg.algo, self.options)

    def close(self) -> None:
        """Stop the algorithm (its EnvRunners and learners)."""
        algo = getattr(self, "algo_rl", None)
        if algo is not None:
            algo.stop()
            self.algo_rl = None
