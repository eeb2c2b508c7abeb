"""``CatchVectorEnv``: N Catch games stepped together with numpy, no subprocesses.

Game for game it returns what N :class:`~catchrl.envs.CatchEnv` with the same
seeds return (``tests/envs/test_vector.py``): game ``i`` draws from its own
generator, seeded with ``seed + i`` as Gymnasium's vector envs do.

Autoreset (Gymnasium's ``AutoresetMode``):

- ``"next_step"`` (default, Gymnasium's standard): the step that ends game i
  returns its last observation with ``terminated[i] = True``; the *next*
  ``step`` ignores ``actions[i]``, starts a new game and returns its first
  observation with reward 0 and both flags False.
- ``"same_step"``: the step that ends game i already returns the first
  observation of its next game; the last one is in ``infos["final_obs"][i]``
  (``infos["_final_obs"]`` marks which). This is what SB3's ``VecEnv`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from catchrl.envs.core import BatchState, CatchParams, reset_batch, step_batch
from catchrl.envs.observations import (
    grid_boards,
    make_params,
    observation_space,
    state_features,
)
from catchrl.envs.render import FrameRenderer

__all__ = ["CatchVectorEnv"]

_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


class CatchVectorEnv(VectorEnv):
    """N games of Catch in one numpy batch.

    Args:
        num_envs: Number of games N.
        obs_type: ``"pixels"``, ``"state"`` or ``"grid"`` (see :class:`CatchEnv`).
        frame_size: Side of a pixel frame (book: 80).
        frame_stack: Frames per pixel observation (book: 4).
        autoreset_mode: ``"next_step"`` or ``"same_step"`` (module docstring).
        copy: Return a fresh observation array each call (default). ``False``
            returns the env's own buffer, overwritten by the next call.
        render_mode: Not supported (``None``); watch a single ``CatchEnv``.
        params: A whole :class:`CatchParams`, or give its fields as keywords.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, obs_type: str = "pixels", frame_size: int = 80,
                 frame_stack: int = 4, autoreset_mode: str | AutoresetMode = "next_step",
                 copy: bool = True, render_mode: str | None = None,
                 params: CatchParams | None = None, **overrides: Any) -> None:
        self.params = make_params(obs_type, params, overrides, "CatchVectorEnv")
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"CatchVectorEnv: num_envs must be a positive int, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError("CatchVectorEnv: rendering is not supported; "
                             "use CatchEnv(render_mode=...) to watch a game")
        mode = AutoresetMode(autoreset_mode.value if isinstance(autoreset_mode, AutoresetMode)
                             else _MODES.get(autoreset_mode, autoreset_mode))
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"CatchVectorEnv: autoreset_mode must be 'next_step' or "
                             f"'same_step', got {autoreset_mode!r}")
        if not isinstance(frame_stack, (int, np.integer)) or frame_stack < 1:
            raise ValueError(f"CatchVectorEnv: frame_stack must be a positive int, "
                             f"got {frame_stack!r}")
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.num_envs, self.obs_type, self.copy = int(num_envs), obs_type, copy
        self.frame_stack, self.render_mode = int(frame_stack), None
        self.renderer = FrameRenderer(self.params, frame_size)
        n = self.num_envs
        self.batch = BatchState.zeros(n)
        self._rngs: list[np.random.Generator] = []
        self._needs_reset = np.zeros(n, dtype=bool)  # next_step: reset on the next call
        self._started = False
        self._closed = False
        s = self.renderer.size
        self._obs = (np.zeros((n, s, s, self.frame_stack), dtype=np.uint8)
                     if obs_type == "pixels" else None)
        sample = self._observe_fresh(np.arange(1), BatchState.zeros(1))
        self.single_observation_space = observation_space(obs_type, sample[0])
        self.observation_space = batch_space(self.single_observation_space, n)
        self.single_action_space = spaces.Discrete(3)
        self.action_space = spaces.MultiDiscrete(np.full(n, 3))

    # -- gymnasium API -------------------------------------------------------

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start all N games. ``seed=s`` seeds game i with ``s + i``; a list seeds each."""
        if self._closed:
            raise RuntimeError("CatchVectorEnv: reset() called after close()")
        if seed is None and self._rngs:
            seeds: list[int | None] = [None] * self.num_envs  # keep the generators going
        elif seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        else:
            if len(seed) != self.num_envs:
                raise ValueError(f"CatchVectorEnv: got {len(seed)} seeds for {self.num_envs} envs")
            self._rngs = [seeding.np_random(s)[0] if s is not None or i >= len(self._rngs)
                          else self._rngs[i] for i, s in enumerate(seed)]
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(
                seed if isinstance(seed, (int, np.integer)) else None)
        idx = np.arange(self.num_envs)
        reset_batch(self.params, self.batch, idx, self._rngs)
        self._needs_reset[:] = False
        self._started = True
        return self._out(self._observe_fresh(idx, self.batch)), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        """Step all N games with ``actions[N]``; see the module docstring for autoreset."""
        if self._closed:
            raise RuntimeError("CatchVectorEnv: step() called after close()")
        if not self._started:
            raise RuntimeError("CatchVectorEnv: call reset() before step()")
        a = self._check_actions(actions)
        n = self.num_envs
        restart = np.flatnonzero(self._needs_reset)
        playing = ~self._needs_reset
        if restart.size:  # next_step autoreset: these games restart, their action ignored
            a = np.where(playing, a, 1)
            self.batch.landed[restart] = False  # no respawn draw: reset_batch draws below
        reward, terminated = step_batch(self.params, self.batch, a, self._rngs)
        if restart.size:
            reset_batch(self.params, self.batch, restart, self._rngs)
            reward[restart] = 0.0
            terminated[restart] = False
        obs = self._observe_next(restart)
        infos: dict[str, Any] = {}
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
            done = np.flatnonzero(terminated)
            if done.size:
                final = np.empty(n, dtype=object)
                for i in done:
                    final[i] = obs[i].copy()
                infos = {"final_obs": final, "_final_obs": terminated.copy()}
                reset_batch(self.params, self.batch, done, self._rngs)
                obs = self._observe_restart(done)
        else:
            self._needs_reset = terminated.copy()
        return self._out(obs), reward, terminated, np.zeros(n, dtype=bool), infos

    def close_extras(self, **kwargs: Any) -> None:
        """Mark the env closed (nothing else to release)."""
        self._closed = True

    # -- observations ----------------------------------------------------------

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"CatchVectorEnv: actions must have shape ({self.num_envs},), "
                             f"got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"CatchVectorEnv: actions must be integers in {{0, 1, 2}}, "
                            f"got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > 2):
            bad = a[(a < 0) | (a > 2)]
            raise ValueError(f"CatchVectorEnv: actions must be 0 (left), 1 (stay) or 2 (right), "
                             f"got {bad.tolist()[:5]}")
        return a.astype(np.int64, copy=False)

    def _out(self, obs: np.ndarray) -> np.ndarray:
        return obs.copy() if self.copy else obs

    def _observe_fresh(self, idx: np.ndarray, b: BatchState) -> np.ndarray:
        """Observations of games that just started (their frame repeated in every slot)."""
        if self.obs_type != "pixels":
            return self._features(b)
        frames = self.renderer.render(b.ball_x[idx], b.ball_y[idx], b.paddle_x[idx])
        if b is not self.batch:  # a throw-away sample
            return np.repeat(frames[..., None], self.frame_stack, axis=3)
        self._obs[idx] = frames[..., None]
        return self._obs

    def _observe_restart(self, idx: np.ndarray) -> np.ndarray:
        return self._observe_fresh(idx, self.batch)

    def _observe_next(self, restart: np.ndarray) -> np.ndarray:
        """Observations after a step: shift the stacks, draw the new frames."""
        if self.obs_type != "pixels":
            return self._features(self.batch)
        obs, b = self._obs, self.batch
        assert obs is not None
        frames = self.renderer.render(b.ball_x, b.ball_y, b.paddle_x)
        obs[..., :-1] = obs[..., 1:]
        obs[..., -1] = frames
        if restart.size:
            obs[restart] = frames[restart][..., None]
        return obs

    def _features(self, b: BatchState) -> np.ndarray:
        if self.obs_type == "state":
            return state_features(self.params, b.ball_x, b.ball_y, b.ball_vx, b.paddle_x)
        return grid_boards(self.params, b.ball_x, b.ball_y, b.paddle_x)
