"""``CatchVectorEnv``: N Catch games stepped together with numpy, no subprocesses.

Game ``i`` plays as a :class:`~catchrl.envs.CatchEnv` seeded ``seed + i``, and
the infos are ``SyncVectorEnv``'s over N of them, key for key and dtype for
dtype: ``caught``, ``missed``, ``balls_left`` with their ``_key`` masks, and
``is_success`` on the step that ends a game. Autoreset (``AutoresetMode``):

- ``"next_step"`` (default): the step after game i ended ignores ``actions[i]``
  and returns the first observation of its next game, reward 0, flags False;
- ``"same_step"`` (SB3's way): the step that ends game i returns the first
  observation of its next game; the last one is in ``infos["final_obs"][i]``,
  its infos in ``infos["final_info"]`` (``_final_obs``, ``_final_info`` mark which).

A step is the core's :func:`~catchrl.envs.core.step_batch` and, for pixels,
:meth:`~catchrl.envs.render.FrameStack.push`. ``copy=False`` returns the env's
own buffer, saving a copy that at 1024 games of ``(80, 80, 4)`` (26 MB) costs
more than the rest of a pixel step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, fields
from typing import Any, ClassVar

import numpy as np
from gymnasium import logger, spaces
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from catchrl.envs.core import BatchState, CatchParams, check_reset_options, reset_batch, step_batch
from catchrl.envs.observations import grid_boards, make_params, observation_space, state_features
from catchrl.envs.render import (
    FrameRenderer,
    FrameStack,
    check_frame_size,
    check_frame_stack,
    screen_rgb,
)
from catchrl.envs.sizing import check_env_fits, check_num_envs

_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


class CatchVectorEnv(VectorEnv):
    """N games of Catch in one numpy batch.

    Takes :class:`CatchEnv`'s arguments (but ``render_mode`` only ``"rgb_array"``:
    :meth:`render` returns the N screens), and ``num_envs``, ``autoreset_mode``
    (module docstring) and ``copy`` (``False``: the env's own buffer, overwritten
    by the next call). Settings that need more memory than is free
    (:func:`~catchrl.envs.estimate_env_bytes`) raise ``ValueError`` before
    anything is allocated.
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
        self.params = make_params(obs_type, params, overrides, "CatchVectorEnv")
        num_envs = check_num_envs(num_envs, "CatchVectorEnv")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"CatchVectorEnv: render_mode must be None or 'rgb_array', got {render_mode!r}; "
                "to watch a game in a window use CatchEnv(render_mode='human')"
            )
        mode = str(getattr(autoreset_mode, "value", autoreset_mode))
        if mode not in _MODES:
            raise ValueError(
                f"CatchVectorEnv: autoreset_mode must be 'next_step' or "
                f"'same_step', got {autoreset_mode!r}"
            )
        mode = _MODES[mode]
        frame_stack, frame_size = check_frame_stack(frame_stack), check_frame_size(frame_size)
        fits = {"copy": copy, "same_step": mode == AutoresetMode.SAME_STEP}
        check_env_fits(
            "CatchVectorEnv", self.params, obs_type, num_envs, frame_size, frame_stack, **fits
        )
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self._same_step = fits["same_step"]
        self.num_envs, self.obs_type, self.copy = int(num_envs), obs_type, copy
        self.frame_stack, self.render_mode = frame_stack, render_mode
        self.renderer = FrameRenderer(self.params, frame_size)
        n = self.num_envs
        self.batch = BatchState.zeros(n)
        self._rngs: list[np.random.Generator] = []
        self._needs_reset = np.zeros(n, dtype=bool)  # next_step: these restart on the next call
        self._started = False
        self._stack = FrameStack(self.renderer, n, frame_stack) if obs_type == "pixels" else None
        if obs_type == "pixels":
            sample = np.zeros((frame_size, frame_size, frame_stack), dtype=np.uint8)
        else:
            sample = self._features(BatchState.zeros(1))[0]
        self.single_observation_space = observation_space(obs_type, sample)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.single_action_space = spaces.Discrete(3)
        self.action_space = spaces.MultiDiscrete(np.full(n, 3))

    # -- gymnasium API -------------------------------------------------------

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start all N games. ``seed=s`` seeds game i with ``s + i``; a list seeds each.

        ``options``: the start positions of :class:`CatchEnv`'s ``reset``
        (``ball_x``, ``ball_vx``, ``paddle_x``), for every game.

        Raises:
            ValueError: an unknown option, or a value out of its range.

        """
        start = check_reset_options(self.params, options, "CatchVectorEnv")
        n = self.num_envs
        if seed is None or isinstance(seed, (int, np.integer)):
            if seed is not None or not self._rngs:  # else: keep the generators going
                seeds = [None if seed is None else int(seed) + i for i in range(n)]
                self._rngs = [seeding.np_random(s)[0] for s in seeds]
        else:
            if len(seed) != n:
                raise ValueError(f"CatchVectorEnv: got {len(seed)} seeds for {n} envs")
            old = self._rngs
            self._rngs = [
                seeding.np_random(s)[0] if s is not None or i >= len(old) else old[i]
                for i, s in enumerate(seed)
            ]
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(
                seed if isinstance(seed, (int, np.integer)) else None
            )
        self.batch = reset_batch(self.params, self._rngs)
        for name, value in start.items():
            getattr(self.batch, name)[:] = value
        self._needs_reset[:] = False
        self._started = True
        obs = self._observe(self.batch, np.arange(n), push=False)
        return self._out(obs), self._infos()

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all N games with ``actions[N]``; autoreset and infos: the module docstring."""
        if not self._started:
            raise RuntimeError("CatchVectorEnv: call reset() before step()")
        a = self._check_actions(actions)
        n, restart = self.num_envs, np.flatnonzero(self._needs_reset)
        if restart.size:  # next_step autoreset: these games restart, their actions ignored
            a = np.where(self._needs_reset, 1, a)
            landed = self.batch.landed & ~self._needs_reset  # no respawn: they restart below
            self.batch = dataclasses.replace(self.batch, landed=landed)
        self.batch, reward, terminated = step_batch(self.params, self.batch, a, self._rngs)
        if restart.size:
            self._restart(restart)
            reward[restart], terminated[restart] = 0.0, False
        obs = self._observe(self.batch, restart if restart.size else None, restart.size < n)
        self._needs_reset[:] = False
        infos = self._infos()
        if terminated.any():
            if self._same_step:
                done = np.flatnonzero(terminated)
                final = np.empty(n, dtype=object)
                for i, last in zip(done, obs[done], strict=True):  # copies: redrawn below
                    final[i] = last
                final_info = self._infos(terminated)
                self._restart(done)
                obs = self._observe(self.batch, done, push=False)
                infos = self._infos()  # the new games' reset infos, as SyncVectorEnv's
                infos.update(final_obs=final, _final_obs=terminated.copy())
                infos.update(final_info=final_info, _final_info=terminated.copy())
            else:
                infos.update(self._success(terminated))
                self._needs_reset = terminated.copy()
        return self._out(obs), reward, terminated, np.zeros(n, dtype=bool), infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """``rgb_array``: the N screens, uint8 ``(H, W, 3)`` each, as :meth:`CatchEnv.render`."""
        if self.render_mode is None:
            logger.warn(
                "CatchVectorEnv.render() called without a render_mode; "
                "pass render_mode='rgb_array' to the constructor"
            )
            return None
        if not self._started:
            raise ResetNeeded("CatchVectorEnv: call reset() before render()")
        return tuple(screen_rgb(self.params, self.batch.get(i)) for i in range(self.num_envs))

    def _infos(self, games: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The infos N :class:`CatchEnv` give, batched as ``SyncVectorEnv`` batches them.

        ``games``: where games just ended (bool ``[N]``), for their last infos:
        only their entries set and marked, ``is_success`` added. ``None``:
        every game's counts, all marked.
        """
        b, infos = self.batch, {}
        mask = np.ones(self.num_envs, dtype=bool) if games is None else games
        for name in ("caught", "missed", "balls_left"):
            values = getattr(b, name)
            infos[name] = values.copy() if games is None else np.where(games, values, 0)
            infos[f"_{name}"] = mask.copy()
        if games is not None:
            infos.update(self._success(games))
        return infos

    def _success(self, ended: np.ndarray) -> dict[str, np.ndarray]:
        """``is_success`` (every ball caught) of the games that just ``ended``, with its mask."""
        return {"is_success": ended & (self.batch.missed == 0), "_is_success": ended.copy()}

    # -- checkpoints -------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """A snapshot for checkpoints: ``{"arrays": {name: ndarray}, "meta": JSON-ready dict}``.

        Holds the games, their generators, and for pixels the frame stacks: the
        next steps of a restored env give bit for bit the original's.
        """
        if not self._started:
            raise RuntimeError("CatchVectorEnv.get_state: call reset() first")
        arrays = {f"batch_{f.name}": getattr(self.batch, f.name).copy() for f in fields(self.batch)}
        arrays["needs_reset"] = self._needs_reset.copy()
        meta = {"num_envs": self.num_envs, "obs_type": self.obs_type, "params": asdict(self.params)}
        meta["rngs"] = [r.bit_generator.state for r in self._rngs]
        if self._stack is not None:
            st = self._stack
            arrays.update(
                frames=st.frames.copy(), frame_rows=st.rows.copy(), frame_cols=st.cols.copy()
            )
            meta["frame_pos"] = st.pos
        return {"arrays": arrays, "meta": meta}

    def set_state(self, state: dict[str, Any]) -> np.ndarray:
        """Restore a :meth:`get_state` snapshot; returns the observations to act on.

        Raises:
            ValueError: the snapshot was taken of another game or number of games.

        """
        arrays, meta = state["arrays"], state["meta"]
        mine = {"num_envs": self.num_envs, "obs_type": self.obs_type, "params": asdict(self.params)}
        for key, value in mine.items():
            if meta.get(key) != value:
                raise ValueError(
                    f"CatchVectorEnv.set_state: the snapshot has {key} = "
                    f"{meta.get(key)!r}, this env {value!r}"
                )
        kinds = {f.name: (bool if f.name == "landed" else np.int64) for f in fields(BatchState)}
        self.batch = BatchState(
            **{k: np.array(arrays[f"batch_{k}"], dtype=t) for k, t in kinds.items()}
        )
        self._needs_reset = np.array(arrays["needs_reset"], dtype=bool)
        self._rngs = []
        for st in meta["rngs"]:
            rng = np.random.Generator(getattr(np.random, st["bit_generator"])())
            rng.bit_generator.state = st
            self._rngs.append(rng)
        self._started = True
        if self._stack is None:
            return self._out(self._observe(self.batch, None, push=False))
        frames = np.asarray(arrays["frames"])
        if frames.shape != self._stack.frames.shape or frames.dtype != np.uint8:
            raise ValueError(
                f"CatchVectorEnv.set_state: the snapshot's frames are {frames.dtype} "
                f"{frames.shape}, this env's {self._stack.frames.shape}"
            )
        self._stack.frames[:] = frames
        self._stack.rows[:], self._stack.cols[:] = arrays["frame_rows"], arrays["frame_cols"]
        self._stack.pos = int(meta["frame_pos"])
        return self._out(self._stack.frames)

    # -- helpers -----------------------------------------------------------------

    def _restart(self, idx: np.ndarray) -> None:
        """New games at ``idx`` (the core's reset, each from its own generator)."""
        self.batch = self.batch.merge(idx, reset_batch(self.params, [self._rngs[i] for i in idx]))

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(
                f"CatchVectorEnv: actions must have shape ({self.num_envs},), got {a.shape}"
            )
        if a.dtype.kind not in "iu":
            raise TypeError(
                f"CatchVectorEnv: actions must be integers in {{0, 1, 2}}, got dtype {a.dtype}"
            )
        a = a.astype(np.int64, copy=False)
        if (a.view(np.uint64) > 2).any():  # negatives wrap to huge values
            bad = a[(a < 0) | (a > 2)]
            raise ValueError(
                f"CatchVectorEnv: actions must be 0 (left), 1 (stay) or 2 (right), "
                f"got {bad.tolist()[:5]}"
            )
        return a

    def _out(self, obs: np.ndarray) -> np.ndarray:
        return obs.copy() if self.copy and self._stack is not None else obs

    def _observe(self, b: BatchState, fresh: np.ndarray | None, push: bool = True) -> np.ndarray:
        """The observations of ``b``: pixels push a frame, then the stacks of ``fresh`` restart."""
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
