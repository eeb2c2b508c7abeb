"""The native :class:`~catchrl.envs.CatchVectorEnv` as a Stable-Baselines3 ``VecEnv``.

:class:`CatchSB3VecEnv` (built by :func:`make_catch_vec_env`) plays all games
in one numpy batch with same-step autoreset: no subprocesses, no per-game
Python objects, ``terminal_observation`` and ``episode`` in the infos as SB3's
``DummyVecEnv`` + ``Monitor`` would give them.

Stable-Baselines3 is imported on the first :func:`make_catch_vec_env` call, so
importing this module costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from catchrl.agents.sb3_algos import algorithm_class
from catchrl.envs import CatchVectorEnv

__all__ = ["CatchSB3VecEnv", "make_catch_vec_env"]


class CatchSB3VecEnv:
    """The native :class:`CatchVectorEnv` as a Stable-Baselines3 ``VecEnv``.

    Built by :func:`make_catch_vec_env` (which subclasses SB3's ``VecEnv``
    lazily, so this module imports without SB3). The games run with same-step
    autoreset: the step that ends game ``i`` returns the first observation of
    its next game, the last one in ``infos[i]["terminal_observation"]``, plus
    ``infos[i]["episode"] = {"r", "l", "t"}`` as SB3's ``Monitor`` writes it,
    and ``infos[i]["is_success"]`` (every ball caught) as the env's last info
    has it, from which SB3 logs its success rate.
    Every info has ``TimeLimit.truncated`` as ``DummyVecEnv`` gives it (always
    ``False``: Catch never truncates).

    Args:
        num_envs: Games played at once.
        obs_type: ``pixels``, ``state`` or ``grid``.
        **game_kwargs: Other :class:`CatchVectorEnv` arguments (game parameters).

    """


def make_catch_vec_env(
    num_envs: int = 8, obs_type: str = "pixels", seed: int | None = None, **game_kwargs: Any
) -> Any:
    """A :class:`CatchSB3VecEnv` over ``num_envs`` native games (seeded at the first reset).

    Args:
        num_envs: Games played at once.
        obs_type: ``pixels``, ``state`` or ``grid``.
        seed: Game ``i`` of the first reset is seeded with ``seed + i``.
        **game_kwargs: Game parameters for :class:`CatchVectorEnv`.

    """
    env = _vec_env_class()(num_envs, obs_type, **game_kwargs)
    if seed is not None:
        env.seed(seed)
    return env


_VEC_ENV_CLASS: type | None = None


def _vec_env_class() -> type:
    """Define the ``VecEnv`` subclass on first use (SB3 imported only then)."""
    global _VEC_ENV_CLASS
    if _VEC_ENV_CLASS is not None:
        return _VEC_ENV_CLASS
    algorithm_class("sb3-dqn")  # a clear error if SB3 is missing
    from stable_baselines3.common.vec_env import VecEnv

    class _CatchSB3VecEnv(CatchSB3VecEnv, VecEnv):
        __doc__ = CatchSB3VecEnv.__doc__

        def __init__(self, num_envs: int, obs_type: str, **game_kwargs: Any) -> None:
            self.venv_native = CatchVectorEnv(
                num_envs, obs_type=obs_type, autoreset_mode="same_step", **game_kwargs
            )
            self.render_mode = None
            VecEnv.__init__(
                self,
                num_envs,
                self.venv_native.single_observation_space,
                self.venv_native.single_action_space,
            )
            self._actions = np.ones(num_envs, dtype=np.int64)
            self._returns = np.zeros(num_envs, dtype=np.float64)
            self._lengths = np.zeros(num_envs, dtype=np.int64)
            self._t0 = time.perf_counter()
            self._started = False

        def reset(self) -> np.ndarray:
            seeds = self._seeds
            if any(s is not None for s in seeds):
                obs, _ = self.venv_native.reset(seed=list(seeds))
            else:
                obs, _ = self.venv_native.reset()
            self._reset_seeds()
            self._reset_options()
            self._returns[:] = 0.0
            self._lengths[:] = 0
            self._started = True
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            obs, reward, terminated, truncated, info = self.venv_native.step(self._actions)
            dones = terminated | truncated
            self._returns += reward
            self._lengths += 1
            cut = truncated & ~terminated
            infos: list[dict[str, Any]] = [{"TimeLimit.truncated": bool(c)} for c in cut]
            if dones.any():
                final = info["final_obs"]
                success = info["final_info"]["is_success"]
                t = round(time.perf_counter() - self._t0, 6)
                for i in np.flatnonzero(dones):
                    infos[i] = {
                        "terminal_observation": final[i],
                        "TimeLimit.truncated": bool(cut[i]),
                        "is_success": bool(success[i]),
                        "episode": {
                            "r": float(self._returns[i]),
                            "l": int(self._lengths[i]),
                            "t": t,
                        },
                    }
                self._returns[dones] = 0.0
                self._lengths[dones] = 0
            return obs, reward.astype(np.float32), dones, infos

        def close(self) -> None:
            self.venv_native.close()

        def _indices(self, indices: Any) -> Sequence[int]:
            if indices is None:
                return range(self.num_envs)
            return [indices] if isinstance(indices, int) else list(indices)

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            target = self if attr_name == "render_mode" else self.venv_native
            return [getattr(target, attr_name) for _ in self._indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(self.venv_native, attr_name, value)

        def env_method(
            self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
        ) -> list[Any]:
            result = getattr(self.venv_native, method_name)(*method_args, **method_kwargs)
            return [result for _ in self._indices(indices)]

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False for _ in self._indices(indices)]

        def get_images(self) -> Sequence[np.ndarray | None]:
            return [None for _ in range(self.num_envs)]

    _VEC_ENV_CLASS = _CatchSB3VecEnv
    return _VEC_ENV_CLASS
