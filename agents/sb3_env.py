"""The native :class:`~catchrl.envs.CatchVectorEnv` as a Stable-Baselines3 ``VecEnv`` (imports SB3).

Same-step autoreset; ``infos[i]`` holds what SB3's ``DummyVecEnv`` gives, and ``is_success``
(every ball caught); SB3's ``VecMonitor`` adds the ``episode`` statistics ``Monitor`` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from catchrl.envs import CatchVectorEnv


def make_catch_vec_env(
    num_envs: int = 8, obs_type: str = "pixels", seed: int | None = None, **game_kwargs: Any
) -> VecMonitor:
    """An SB3 ``VecEnv`` of ``num_envs`` native games (game ``i`` first seeded ``seed + i``)."""
    env = CatchSB3VecEnv(num_envs, obs_type, **game_kwargs)
    if seed is not None:
        env.seed(seed)
    return VecMonitor(env)


class CatchSB3VecEnv(VecEnv):
    """The native vector env as an SB3 ``VecEnv`` (see the module's docstring)."""

    def __init__(self, num_envs: int, obs_type: str, **game_kwargs: Any) -> None:
        native = CatchVectorEnv(num_envs, obs_type, autoreset_mode="same_step", **game_kwargs)
        self.venv_native = native  # its render_mode (None) is SB3's
        super().__init__(num_envs, native.single_observation_space, native.single_action_space)
        self._actions = np.ones(num_envs, dtype=np.int64)

    def reset(self) -> np.ndarray:
        """Reset every game (seeded by ``seed()`` once); return the first observations."""
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        obs, _ = self.venv_native.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Keep the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every game; SB3's ``(obs, rewards, dones, infos)``."""
        obs, reward, terminated, truncated, info = self.venv_native.step(self._actions)
        dones = terminated | truncated
        cut = truncated & ~terminated  # [N]: a time limit, not the game, ended it
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": bool(c)} for c in cut]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["is_success"] = bool(info["final_info"]["is_success"][i])
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        """Close the games."""
        self.venv_native.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The native env's attribute, once per index."""
        return [getattr(self.venv_native, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set the native env's attribute (for every game)."""
        setattr(self.venv_native, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call the native env's method once; its result once per index."""
        result = getattr(self.venv_native, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """No game is wrapped."""
        return [False for _ in self._get_indices(indices)]
