"""The native vector env as RLlib's EnvRunners play it, recording every real vector step.

The driver reports the recorded steps as every other learner does; pixels reach RLlib as
float32 in [0, 1] (RLlib's default CNN does not rescale its input).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def to_module_obs(obs: np.ndarray) -> np.ndarray:
    """Observations as RLlib's modules take them: pixels (uint8) as float32 in [0, 1]."""
    obs = np.asarray(obs)
    if obs.dtype == np.uint8:
        return obs.astype(np.float32) * np.float32(1 / 255)
    return obs


class RecordingVectorEnv(gym.vector.VectorWrapper):
    """The native vector env as an EnvRunner plays it, recording every real vector step.

    With ``next_step`` autoreset the step after a game ends only resets it: not recorded.
    """

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        space = env.single_observation_space
        if space.dtype == np.uint8:
            self.single_observation_space = gym.spaces.Box(0.0, 1.0, space.shape, np.float32)
            self.observation_space = gym.vector.utils.batch_space(
                self.single_observation_space, self.num_envs
            )
        self._pending_reset = np.zeros(self.num_envs, dtype=bool)
        self._records: list[tuple[np.ndarray, np.ndarray]] = []

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        """Reset every game (``seed``: game i from ``seed + i``)."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._pending_reset[:] = False
        return to_module_obs(obs), info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step every game; keep (rewards, ended) of the games that really stepped."""
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        real = ~self._pending_reset
        ended = (np.asarray(terminated) | np.asarray(truncated)) & real
        if real.any():
            self._records.append((np.where(real, rewards, 0.0).astype(np.float64), ended))
        self._pending_reset = ended.copy()
        return to_module_obs(obs), rewards, terminated, truncated, info

    def drain(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """Rewards and ended ``[T, N]`` since the last drain; whether all games just ended."""
        n = self.num_envs
        rewards = np.array([r for r, _ in self._records], dtype=np.float64).reshape(-1, n)
        ended = np.array([e for _, e in self._records], dtype=bool).reshape(-1, n)
        self._records.clear()
        at_boundary = bool(self._pending_reset.all()) or not len(rewards)
        return rewards, ended, at_boundary


def make_env(config: dict[str, Any]) -> RecordingVectorEnv:
    """The EnvRunner's env (``tune.register_env``'d): ``config["num_envs"]`` games of ``game``."""
    from catchrl.envs import CatchVectorEnv

    return RecordingVectorEnv(CatchVectorEnv(config.get("num_envs", 1), **config.get("game", {})))


def drain_runner(runner: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """:meth:`RecordingVectorEnv.drain` of an EnvRunner's env (local or remote)."""
    env = runner.env
    while not isinstance(env, RecordingVectorEnv):  # RLlib's wrappers around it
        env = env.env
    return env.drain()


def start_games(algo: Any, seed: int, num_envs: int, runners: int) -> None:
    """Fresh games for ``algo``'s next iteration, game i of all EnvRunners seeded ``seed + i``."""
    per_runner = num_envs // max(runners, 1)

    def reset(runner: Any) -> None:  # the local EnvRunner is worker 0, remote ones 1, 2, ...
        runner._seed = int(seed) + max(runner.worker_index - 1, 0) * per_runner
        runner._needs_initial_reset = True

    algo.env_runner_group.foreach_env_runner(reset, local_env_runner=not runners)


def drain(algo: Any, runners: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The last iteration's vector steps, all EnvRunners: rewards, ended ``[T, N]``, all done."""
    drained = algo.env_runner_group.foreach_env_runner(drain_runner, local_env_runner=not runners)
    rewards, ended, done = zip(*drained, strict=True)
    return np.concatenate(rewards, axis=1), np.concatenate(ended, axis=1), all(done)
