"""``CatchVectorEnv``: N Catch games stepped together with numpy, no subprocesses.

Game ``i`` plays as a :class:`~catchrl.envs.CatchEnv` seeded ``seed + i``; the
infos are ``SyncVectorEnv``'s over N of them, key for key. Autoreset:
``"next_step"`` (default; the step after game i ended ignores ``actions[i]`` and
returns its next game's first observation, reward 0) or ``"same_step"`` (SB3's:
the ending step returns the next game's first observation, the last one in
``infos["final_obs"]``, its infos in ``infos["final_info"]``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from gymnasium import logger, spaces
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from catchrl.envs import render
from catchrl.envs.core import BatchState, CatchParams, check_reset_options, reset_batch, step_batch
from catchrl.envs.observations import grid_boards, observation_space, state_features
from catchrl.envs.sizing import check_env_args

_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
_COUNTS = ("caught", "missed", "balls_left")


class CatchVectorEnv(VectorEnv):
    """N games of Catch in one numpy batch: a step is :func:`~catchrl.envs.core.step_batch`.

    :class:`CatchEnv`'s arguments (``render_mode`` only ``"rgb_array"``), ``num_envs``,
    ``autoreset_mode`` and ``copy`` (``False``: the env's own buffer, overwritten by
    the next call). Too large for the free memory: ``ValueError`` first.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": ["rgb_array"],
        "render_fps": 30,
    }

    def __init__(
        self,
        num_envs: int = 1,
        obs_type: str = "pixels",
        frame_size: int = 80,
        frame_stack: int = 4,
        autoreset_mode: str | AutoresetMode = "next_step",
        copy: bool = True,
        render_mode: str | None = None,
        params: CatchParams | None = None,
        **overrides: Any,
    ) -> None:
        args = (obs_type, params, overrides, num_envs, frame_size, frame_stack)
        self.params, n, size, depth, _ = check_env_args("CatchVectorEnv", *args)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"CatchVectorEnv: render_mode must be None or 'rgb_array', got {render_mode!r}; "
                "to watch a game in a window use CatchEnv(render_mode='human')"
            )
        modes = _MODES.values()
        mode = autoreset_mode if autoreset_mode in modes else _MODES.get(str(autoreset_mode))
        if mode is None:
            raise ValueError(
                "CatchVectorEnv: autoreset_mode must be 'next_step' or 'same_step', "
                f"got {autoreset_mode!r}"
            )
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.obs_type, self.copy, self.render_mode, self.num_envs = obs_type, copy, render_mode, n
        self.frame_stack, self.renderer = depth, render.FrameRenderer(self.params, size)
        self.batch: BatchState | None = None  # the N games, after reset()
        self._rngs: list[np.random.Generator] = []
        self._needs_reset = np.zeros(n, dtype=bool)  # next_step: these restart on the next call
        self._stack = render.FrameStack(self.renderer, n, depth) if obs_type == "pixels" else None
        sample = self._stack.frames[0] if self._stack else self._features(BatchState.zeros(1))[0]
        self.single_observation_space = observation_space(obs_type, sample)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.single_action_space = spaces.Discrete(3)
        self.action_space = spaces.MultiDiscrete(np.full(n, 3))

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """All N games anew; ``seed``: s (game i gets s + i) or one per game; options: CatchEnv."""
        start = check_reset_options(self.params, options, "CatchVectorEnv")
        n, single = self.num_envs, seed is None or isinstance(seed, (int, np.integer))
        seeds = [None if seed is None else int(seed) + i for i in range(n)] if single else seed
        if len(seeds) != n:
            raise ValueError(f"CatchVectorEnv: got {len(seeds)} seeds for {n} envs")
        old = self._rngs  # a game seeded None keeps its generator going
        self._rngs = [
            old[i] if s is None and i < len(old) else seeding.np_random(s)[0]
            for i, s in enumerate(seeds)
        ]
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed if single else None)
        self.batch = reset_batch(self.params, self._rngs, **start)
        self._needs_reset[:] = False
        return self._out(self._observe(np.arange(n), push=False)), self._infos()

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all N games with ``actions[N]``; autoreset and infos: the module docstring."""
        if self.batch is None:
            raise RuntimeError("CatchVectorEnv: call reset() before step()")
        a, b = self._check_actions(actions), self.batch
        n, restart = self.num_envs, np.flatnonzero(self._needs_reset)
        if restart.size:  # next_step autoreset: these games restart, their actions ignored
            a = np.where(self._needs_reset, 1, a)
            b = dataclasses.replace(b, landed=b.landed & ~self._needs_reset)  # no respawn
        self.batch, reward, terminated = step_batch(self.params, b, a, self._rngs)
        if restart.size:
            self._restart(restart)
            reward[restart], terminated[restart] = 0.0, False
        obs = self._observe(restart if restart.size else None, push=restart.size < n)
        self._needs_reset[:] = False
        infos = self._infos()
        if terminated.any() and self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
            done = np.flatnonzero(terminated)
            final = np.empty(n, dtype=object)
            for i, last in zip(done, obs[done], strict=True):  # copies: redrawn below
                final[i] = last
            final_info = self._infos(terminated)
            self._restart(done)
            obs, infos = self._observe(done, push=False), self._infos()  # the new games'
            infos.update(final_obs=final, _final_obs=terminated.copy())
            infos.update(final_info=final_info, _final_info=terminated.copy())
        elif terminated.any():
            infos.update(self._success(terminated))
            self._needs_reset = terminated.copy()
        return self._out(obs), reward, terminated, np.zeros(n, dtype=bool), infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """``rgb_array``: the N screens, uint8 ``(H, W, 3)`` each, as :meth:`CatchEnv.render`."""
        if self.render_mode is None:
            logger.warn("CatchVectorEnv.render() without a render_mode; pass 'rgb_array'")
            return None
        if self.batch is None:
            raise ResetNeeded("CatchVectorEnv: call reset() before render()")
        b, p = self.batch, self.params
        return tuple(render.screen_rgb(p, b.get(i)) for i in range(self.num_envs))

    def _infos(self, games: np.ndarray | None = None) -> dict[str, np.ndarray]:
        infos, mask = {}, np.ones(self.num_envs, dtype=bool) if games is None else games
        for name in _COUNTS:
            values = getattr(self.batch, name)
            infos[name] = values.copy() if games is None else np.where(games, values, 0)
            infos[f"_{name}"] = mask.copy()
        return infos if games is None else {**infos, **self._success(games)}

    def _success(self, ended: np.ndarray) -> dict[str, np.ndarray]:
        return {"is_success": ended & (self.batch.missed == 0), "_is_success": ended.copy()}

    def get_state(self) -> dict[str, Any]:
        """A snapshot for checkpoints, ``{"arrays": {...}, "meta": JSON-ready}``, exact mid-game."""
        if self.batch is None:
            raise RuntimeError("CatchVectorEnv.get_state: call reset() first")
        arrays = {f"batch_{k}": v.copy() for k, v in vars(self.batch).items()}
        arrays["needs_reset"] = self._needs_reset.copy()
        meta = {**self._identity(), "rngs": [r.bit_generator.state for r in self._rngs]}
        if (st := self._stack) is not None:
            rows, cols = st.corners.copy()
            arrays.update(frame_rows=rows, frame_cols=cols, frames=st.frames.copy())
            meta["frame_pos"] = st.pos
        return {"arrays": arrays, "meta": meta}

    def set_state(self, state: dict[str, Any]) -> np.ndarray:
        """Restore a :meth:`get_state` snapshot of this game; returns the observations."""
        arrays, meta = state["arrays"], state["meta"]
        for key, value in self._identity().items():
            if (got := meta.get(key)) != value:
                raise ValueError(f"CatchVectorEnv.set_state: snapshot {key} {got!r}, env {value!r}")
        kinds = {k: v.dtype for k, v in vars(BatchState.zeros(1)).items()}
        self.batch = BatchState(**{k: np.array(arrays[f"batch_{k}"], t) for k, t in kinds.items()})
        self._needs_reset = np.array(arrays["needs_reset"], dtype=bool)
        self._rngs = [np.random.default_rng() for _ in meta["rngs"]]  # PCG64, as seeding's
        for rng, s in zip(self._rngs, meta["rngs"], strict=True):
            rng.bit_generator.state = s
        if self._stack is None:
            return self._out(self._observe(None, push=False))
        st, corners = self._stack, (arrays["frame_rows"], arrays["frame_cols"])
        st.frames[:], st.corners[:], st.pos = arrays["frames"], corners, meta["frame_pos"]
        return self._out(st.frames)

    def _identity(self) -> dict[str, Any]:
        frames = [self.renderer.size, self.frame_stack] if self._stack is not None else None
        mine = {"num_envs": self.num_envs, "obs_type": self.obs_type, "frames": frames}
        return {**mine, "params": dataclasses.asdict(self.params)}

    def _restart(self, idx: np.ndarray) -> None:
        self.batch = self.batch.merge(idx, reset_batch(self.params, [self._rngs[i] for i in idx]))

    def _check_actions(self, actions: Any) -> np.ndarray:
        a, n, name = np.asarray(actions), self.num_envs, "CatchVectorEnv: actions"
        if a.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {a.shape}")
        if a.dtype.kind not in "iu":
            raise TypeError(f"{name} must be integers 0, 1, 2, got dtype {a.dtype}")
        a = a.astype(np.int64, copy=False)
        if (a.view(np.uint64) > 2).any():  # negatives wrap to huge values
            bad = a[(a < 0) | (a > 2)].tolist()[:5]
            raise ValueError(f"{name} must be 0 (left), 1 (stay), 2 (right): {bad}")
        return a

    def _out(self, obs: np.ndarray) -> np.ndarray:
        return obs.copy() if self.copy and self._stack is not None else obs

    def _observe(self, fresh: np.ndarray | None, push: bool = True) -> np.ndarray:
        b = self.batch
        if self._stack is None:
            return self._features(b)
        if push:
            self._stack.push(b.ball_x, b.ball_y, b.paddle_x)
        if fresh is not None:
            self._stack.reset(fresh, b.ball_x[fresh], b.ball_y[fresh], b.paddle_x[fresh])
        return self._stack.frames

    def _features(self, b: BatchState) -> np.ndarray:
        if self.obs_type == "grid":
            return grid_boards(self.params, b.ball_x, b.ball_y, b.paddle_x)
        return state_features(self.params, b.ball_x, b.ball_y, b.ball_vx, b.paddle_x)
