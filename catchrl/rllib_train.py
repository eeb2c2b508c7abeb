"""RLlib algorithms (new API stack) as learners of the run loop, in ``Algorithm.train()``.

Each iteration plays whole games, reported step by step afterwards; a checkpoint is RLlib's
state in msgpack (no pickle) and the driver's RNGs: exact with ``num_env_runners = 0``.
Ray starts locally unless ``CATCHRL_RAY_ADDRESS`` names a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from catchrl.agents import rllib_algos
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
        env = cfg.env
        self.options = cfg.rllib  # with the defaults merged (catchrl.make_config)
        self.has_epsilon = cfg.algo in rllib_algos.OFF_POLICY
        set_torch_threads()
        self.runners = int(self.options.get("num_env_runners", 0))  # 0: sample in this process
        rllib_algos.ensure_ray(num_cpus=max(1, self.runners) + 1)
        setup = (env.game_kwargs(), env.num_envs, cfg.run.seed, env.steps_per_game())
        self.algo_rl = rllib_algos.make_algo_config(cfg.algo, self.options, *setup).build_algo()
        self.last_loss: float | None = None

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The games' buffers and DQN's replay (float32)."""
        capacity = cfg.rllib.get("replay_buffer_config", {}).get("capacity", 0)
        shape = cfg.env.observation_space().shape
        return cfg.env.games_bytes() + int(capacity) * int(np.prod(shape)) * 4

    def run(self, loop: RunLoop) -> None:
        """``Algorithm.train()`` until the loop says stop, reporting every step to ``loop``."""
        boundary = True
        while not loop.at_safe_point():
            if boundary:  # every game ended: the next ones are seeded by the games played
                seed = self.cfg.run.seed + loop.games
                start_games(self.algo_rl, seed, self.cfg.env.num_envs, self.runners)
            self.last_loss = rllib_algos.result_loss(self.algo_rl.train())
            rewards, ended, boundary = drain(self.algo_rl, self.runners)
            for step_rewards, step_ended in zip(rewards, ended, strict=True):
                eps = rllib_algos.epsilon_at(self.options, loop.steps) if self.has_epsilon else 0.0
                loop.record_step(step_rewards, step_ended, eps, self.last_loss)

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The module's greedy action for each observation (the evaluation policy)."""
        return greedy_actions(self.algo_rl.get_module(), obs)

    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """RLlib's state (and DQN's replay) as msgpack bytes, and the driver's RNGs."""
        packed = np.frombuffer(rllib_algos.get_algo_state(self.algo_rl), dtype=np.uint8)
        return {"rllib": {"state": packed}}, {"rng": rng_states()}

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (``ValueError`` if it does not fit this algorithm)."""
        rllib_algos.set_algo_state(self.algo_rl, arrays["rllib"]["state"].tobytes())
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
