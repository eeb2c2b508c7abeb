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
  (``infos["_final_obs"]`` marks which) and its last info in
  ``infos["final_info"]`` (``infos["_final_info"]`` marks which). This is what
  SB3's ``VecEnv`` does.

Infos are those of Gymnasium's ``SyncVectorEnv`` over N :class:`CatchEnv`,
key for key and dtype for dtype (``tests/envs/test_vector_parity.py``), built
from the batch's arrays: ``caught``, ``missed``, ``balls_left`` (int64 ``[N]``)
each with its ``_key`` mask (all True), and on the step that ends a game
``is_success`` (every ball caught; bool ``[N]``, ``_is_success`` marking the
games that ended) — in ``final_info`` with same-step autoreset, where the top
level holds the new games' reset infos. ``reset(options=...)`` takes the single
env's options (the start positions), applied to every game as ``SyncVectorEnv``
passes them to every env. ``render_mode="rgb_array"``: ``render()`` returns the
N screens, as ``SyncVectorEnv.render`` does. Copies (``copy.deepcopy``,
``pickle``) continue exactly as the original.

Speed: pixel stacks are updated in place (:class:`~catchrl.envs.batch_framestack.BatchFrameStack`),
touching only the pixels the balls and paddles occupy, and new balls come
from draws made ahead in blocks (:class:`~catchrl.envs.spawns.SpawnDraws`), so a step loops over
games in Python only to refill a game's draws (once every 64 of its balls).
Grid boards are kept likewise (:class:`~catchrl.envs.observations.GridBoards`):
a step clears and sets only the cells the balls and paddles leave and enter.
``copy=False`` saves the copy of the observation buffer, which at 1024 games
of ``(80, 80, 4)`` (26 MB) costs more than the rest of a pixel step, and
at 8192 grid games (1.6 MB) about a third of a grid step.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar

import numpy as np
from gymnasium import logger, spaces
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from catchrl.envs.batch_framestack import BatchFrameStack
from catchrl.envs.core import (
    BatchState,
    CatchParams,
    check_reset_options,
    reset_batch,
    spawn_balls,
    step_batch,
)
from catchrl.envs.framestack import check_frame_stack, fill_stack
from catchrl.envs.observations import (
    GridBoards,
    grid_boards,
    make_params,
    observation_space,
    state_features,
)
from catchrl.envs.raster import FrameRenderer, check_frame_size
from catchrl.envs.screen import screen_rgb
from catchrl.envs.sizing import check_env_fits, check_num_envs
from catchrl.envs.spawns import SpawnDraws

__all__ = ["CatchVectorEnv"]

_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


class CatchVectorEnv(VectorEnv):
    """N games of Catch in one numpy batch.

    Args:
        num_envs: Number of games N.
        obs_type: ``"pixels"``, ``"state"`` or ``"grid"`` (see :class:`CatchEnv`).
        frame_size: Side of a pixel frame (book: 80; at most 1024).
        frame_stack: Frames per pixel observation (book: 4; at most 64).
        autoreset_mode: ``"next_step"`` or ``"same_step"`` (module docstring).
        copy: Return a fresh observation array each call (default). ``False``
            returns the env's own buffer, overwritten by the next call: no
            copy, which for 1024 pixel games (26 MB) is most of a step's time.
        render_mode: ``None`` or ``"rgb_array"`` (:meth:`render` returns the N
            screens); to watch a game in a window use ``CatchEnv(render_mode="human")``.
        params: A whole :class:`CatchParams`, or give its fields as keywords.

    Raises:
        ValueError: a setting out of range, or settings that need more memory
            than the machine has free (:func:`~catchrl.envs.estimate_env_bytes`),
            refused before anything is allocated.

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
        mode = AutoresetMode(
            autoreset_mode.value
            if isinstance(autoreset_mode, AutoresetMode)
            else _MODES.get(autoreset_mode, autoreset_mode)
        )
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(
                f"CatchVectorEnv: autoreset_mode must be 'next_step' or "
                f"'same_step', got {autoreset_mode!r}"
            )
        frame_stack, frame_size = check_frame_stack(frame_stack), check_frame_size(frame_size)
        same_step = mode == AutoresetMode.SAME_STEP
        check_env_fits(
            "CatchVectorEnv",
            self.params,
            obs_type,
            num_envs,
            frame_size,
            frame_stack,
            copy=copy,
            same_step=same_step,
        )  # before allocating anything
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self._same_step = same_step
        self.num_envs, self.obs_type, self.copy = int(num_envs), obs_type, copy
        self.frame_stack, self.render_mode = int(frame_stack), render_mode
        self.renderer = FrameRenderer(self.params, frame_size)
        n = self.num_envs
        self.batch = BatchState.zeros(n)
        self._rngs: list[np.random.Generator] = []
        self._spawns = SpawnDraws(self.params, n)
        self._needs_reset = np.zeros(n, dtype=bool)  # next_step: reset on the next call
        self._restart_pending = False  # self._needs_reset.any()
        self._started = False
        self._all_games = np.ones(n, dtype=bool)  # the infos' masks where every game has a key
        self._frames = (
            BatchFrameStack(self.renderer, n, self.frame_stack) if obs_type == "pixels" else None
        )
        self._grid = GridBoards(self.params, n) if obs_type == "grid" else None
        self._obs = self._frames.frames if self._frames is not None else None
        if self._grid is not None:
            self._obs = self._grid.boards
        sample = self._observe_fresh(np.arange(1), BatchState.zeros(1))
        self.single_observation_space = observation_space(obs_type, sample[0])
        self.observation_space = batch_space(self.single_observation_space, n)
        self.single_action_space = spaces.Discrete(3)
        self.action_space = spaces.MultiDiscrete(np.full(n, 3))
        if obs_type == "state":
            self._obs = np.zeros((n, *self.single_observation_space.shape), dtype=np.float32)

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
        if seed is None and self._rngs:
            pass  # keep the generators going
        elif seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
            self._spawns.forget(np.arange(self.num_envs))
        else:
            if len(seed) != self.num_envs:
                raise ValueError(f"CatchVectorEnv: got {len(seed)} seeds for {self.num_envs} envs")
            new = [s is not None or i >= len(self._rngs) for i, s in enumerate(seed)]
            self._rngs = [
                seeding.np_random(s)[0] if fresh else self._rngs[i]
                for i, (s, fresh) in enumerate(zip(seed, new, strict=True))
            ]
            self._spawns.forget(np.flatnonzero(new))
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(
                seed if isinstance(seed, (int, np.integer)) else None
            )
        idx = np.arange(self.num_envs)
        self._start_games(idx)
        for name, value in start.items():
            getattr(self.batch, name)[:] = value
        self._needs_reset[:] = False
        self._restart_pending = False
        self._started = True
        return self._out(self._observe_fresh(idx, self.batch)), self._counts()

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all N games with ``actions[N]``; autoreset and infos: the module docstring."""
        if not self._started:
            raise RuntimeError("CatchVectorEnv: call reset() before step()")
        a = self._check_actions(actions)
        n, b = self.num_envs, self.batch
        restart = None
        if self._restart_pending:  # next_step autoreset: these games restart, their action ignored
            restart = np.flatnonzero(self._needs_reset)
            a = np.where(self._needs_reset, 1, a)
            b.landed[restart] = False  # no respawn: _start_games draws their first ball below
        if b.landed.any():  # the next ball of multi-ball games, as step_batch would draw it
            self._spawn_balls(np.flatnonzero(b.landed))
        reward, terminated = step_batch(self.params, b, a, self._rngs)
        if restart is not None:
            self._start_games(restart)
            reward[restart] = 0.0
            terminated[restart] = False
        obs = self._observe_next(restart)
        ended = terminated.any()
        if self._same_step:
            if ended:
                done = np.flatnonzero(terminated)
                last = obs[done]  # a copy: the buffer is redrawn below
                final = np.empty(n, dtype=object)
                for j, i in enumerate(done):
                    final[i] = last[j]
                final_info = self._counts(terminated)
                self._start_games(done)
                obs = self._observe_restart(done)
                infos = self._counts()  # the new games' reset infos, as SyncVectorEnv's
                infos.update(
                    final_obs=final,
                    _final_obs=terminated.copy(),
                    final_info=final_info,
                    _final_info=terminated.copy(),
                )
            else:
                infos = self._counts()
        else:
            infos = self._counts()
            if ended:
                infos.update(self._success(terminated))
                self._needs_reset = terminated.copy()
                self._restart_pending = True
            elif self._restart_pending:
                self._needs_reset[:] = False
                self._restart_pending = False
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

    def _counts(self, games: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The infos N :class:`CatchEnv` give, batched as ``SyncVectorEnv`` batches them.

        Args:
            games: Where games just ended (bool ``[N]``), for their last infos:
                only their entries are set and marked, and ``is_success`` is
                added. ``None``: every game's counts, all marked.

        """
        b = self.batch
        infos: dict[str, np.ndarray] = {}
        for name in ("caught", "missed", "balls_left"):
            values = getattr(b, name)
            if games is None:  # (a copy of a kept mask: np.ones costs 3x as much)
                infos[name], infos[f"_{name}"] = values.copy(), self._all_games.copy()
            else:
                infos[name], infos[f"_{name}"] = np.where(games, values, 0), games.copy()
        if games is not None:
            infos.update(self._success(games))
        return infos

    def _success(self, ended: np.ndarray) -> dict[str, np.ndarray]:
        """``is_success`` (every ball caught) of the games that just ``ended``, with its mask."""
        return {"is_success": ended & (self.batch.missed == 0), "_is_success": ended.copy()}

    # -- checkpoints -------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """A snapshot for checkpoints: ``{"arrays": {name: ndarray}, "meta": JSON-ready dict}``.

        Holds the games' states, their generators, the spawns drawn ahead and,
        for pixels, the frame stacks: a snapshot is exact anywhere, mid-game
        included (the next steps give bit for bit the frames the original gives).
        """
        if not self._started:
            raise RuntimeError("CatchVectorEnv.get_state: call reset() first")
        b = self.batch
        arrays = {f"batch_{f.name}": getattr(b, f.name).copy() for f in fields(b)}
        arrays.update(
            spawn_x=self._spawns.x.copy(),
            spawn_vx=self._spawns.vx.copy(),
            spawn_next=self._spawns.next.copy(),
            needs_reset=self._needs_reset.copy(),
        )
        if self._frames is not None:
            arrays["frames"] = self._frames.frames.copy()
        meta = {
            "num_envs": self.num_envs,
            "obs_type": self.obs_type,
            "params": asdict(self.params),
            "rngs": [r.bit_generator.state for r in self._rngs],
        }
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
        b = self.batch
        for f in fields(b):
            setattr(b, f.name, np.array(arrays[f"batch_{f.name}"], dtype=getattr(b, f.name).dtype))
        self._spawns.x[:] = arrays["spawn_x"]
        self._spawns.vx[:] = arrays["spawn_vx"]
        self._spawns.next[:] = arrays["spawn_next"]
        self._needs_reset = np.array(arrays["needs_reset"], dtype=bool)
        self._restart_pending = bool(self._needs_reset.any())
        self._rngs = []
        for st in meta["rngs"]:
            rng = np.random.Generator(getattr(np.random, st["bit_generator"])())
            rng.bit_generator.state = st
            self._rngs.append(rng)
        self._started = True
        if self._frames is not None and "frames" in arrays:
            frames = np.asarray(arrays["frames"])
            if frames.shape != self._frames.frames.shape or frames.dtype != np.uint8:
                raise ValueError(
                    f"CatchVectorEnv.set_state: the snapshot's frames are {frames.dtype} "
                    f"{frames.shape}, this env's {self._frames.frames.shape}"
                )
            return self._out(self._frames.load(frames))
        return self._out(self._observe_fresh(np.arange(self.num_envs), self.batch))

    # -- observations ----------------------------------------------------------

    def _start_games(self, idx: np.ndarray) -> None:
        """Start new games at ``idx`` (the core's reset), their balls from the draws made ahead."""
        spawns = self._spawns.draw(idx, self._rngs)
        reset_batch(self.params, self.batch, idx, self._rngs, spawns=spawns)

    def _spawn_balls(self, idx: np.ndarray) -> None:
        """New balls at the top for the games ``idx``, from their draws made ahead."""
        spawn_balls(self.params, self.batch, idx, *self._spawns.draw(idx, self._rngs))

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(
                f"CatchVectorEnv: actions must have shape ({self.num_envs},), got {a.shape}"
            )
        if a.dtype != np.int64:
            if a.dtype.kind not in "iu":
                raise TypeError(
                    f"CatchVectorEnv: actions must be integers in {{0, 1, 2}}, got dtype {a.dtype}"
                )
            if a.dtype.kind == "u" or a.dtype.itemsize < 8:
                a = a.astype(np.int64)
        if (a.view(np.uint64) > 2).any():  # negatives wrap to huge values
            bad = a[(a < 0) | (a > 2)]
            raise ValueError(
                f"CatchVectorEnv: actions must be 0 (left), 1 (stay) or 2 (right), "
                f"got {bad.tolist()[:5]}"
            )
        return a

    def _out(self, obs: np.ndarray) -> np.ndarray:
        return obs.copy() if self.copy and obs is self._obs else obs

    def _observe_fresh(self, idx: np.ndarray, b: BatchState) -> np.ndarray:
        """Observations of games that just started (their frame repeated in every slot)."""
        if b is not self.batch:  # a throw-away sample, drawn the plain way
            if self.obs_type != "pixels":
                return self._features(b)
            frames = self.renderer.render(b.ball_x[idx], b.ball_y[idx], b.paddle_x[idx])
            stacks = np.empty((*frames.shape, self.frame_stack), dtype=np.uint8)
            fill_stack(stacks, frames)
            return stacks
        if self._frames is None:
            return self._features(b)
        return self._frames.reset(idx, b.ball_x[idx], b.ball_y[idx], b.paddle_x[idx])

    def _observe_restart(self, idx: np.ndarray) -> np.ndarray:
        return self._observe_fresh(idx, self.batch)

    def _observe_next(self, restart: np.ndarray | None) -> np.ndarray:
        """Observations after a step: push the new frames, restart the stacks of ``restart``."""
        b = self.batch
        if self._frames is None:
            return self._features(b)
        obs = self._frames.push(b.ball_x, b.ball_y, b.paddle_x)
        if restart is not None:
            obs = self._frames.reset(
                restart, b.ball_x[restart], b.ball_y[restart], b.paddle_x[restart]
            )
        return obs

    def _features(self, b: BatchState) -> np.ndarray:
        """State rows or grid boards, into the env's buffer (a new array for a sample)."""
        p = self.params
        if self.obs_type == "grid":
            if b is self.batch:  # only the cells that changed are redrawn
                return self._grid.draw(b.ball_x, b.ball_y, b.paddle_x)
            return grid_boards(p, b.ball_x, b.ball_y, b.paddle_x)
        out = self._obs if b is self.batch else None
        return state_features(p, b.ball_x, b.ball_y, b.ball_vx, b.paddle_x, out=out)
