"""``CatchEnv``: the Catch game as a ``gymnasium.Env``."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded

from catchrl.envs import core, render
from catchrl.envs.core import BatchState, CatchParams, CatchState
from catchrl.envs.observations import grid_boards, observation_space, state_features
from catchrl.envs.sizing import check_env_args


def check_action(action: Any) -> int:
    """``action`` (an integer or 0-d integer array in {0, 1, 2}) as an int, else raise."""
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action[()]
    if not core.is_int(action):
        shape = f" of shape {action.shape}" if isinstance(action, np.ndarray) else ""
        raise TypeError(
            f"Catch action must be one integer in {{0, 1, 2}} (0 = left, 1 = stay, "
            f"2 = right), got {action!r} ({type(action).__name__}{shape})"
        )
    if not 0 <= action <= 2:
        raise ValueError(f"Catch action must be 0 (left), 1 (stay) or 2 (right), got {action}")
    return int(action)


class CatchEnv(gym.Env):
    """The Catch game of *Deep Learning with Keras* (ch. 8), as a Gymnasium env.

    A batch of one of the core, so it plays as each game of :class:`CatchVectorEnv`.
    Actions: 0 = left 20 px, 1 = stay, 2 = right. Observations: ``"pixels"`` the last
    ``frame_stack`` grey frames, uint8 ``(80, 80, 4)``, oldest first; ``"state"``
    float32 ball x / width, ball y / height, paddle x / width (+ x-speed / drift with
    drift); ``"grid"`` bsuite's float32 ``(10, 5)`` board. Reward +1 or -1 on the step
    a ball is decided, else 0; terminated after the last ball, never truncated.
    ``reset(options=...)`` may set ``ball_x``, ``ball_vx``, ``paddle_x``. Infos:
    ``caught``, ``missed``, ``balls_left``, on the last step ``is_success``.
    ``render_mode``: ``"rgb_array"`` (the 400 x 400 screen) or ``"human"`` (the window;
    without a display, SDL's dummy driver and a warning). Copies (deepcopy, pickle)
    continue exactly, without the window.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "rgb_array"], "render_fps": 30}

    def __init__(
        self,
        obs_type: str = "pixels",
        render_mode: str | None = None,
        frame_size: int = 80,
        frame_stack: int = 4,
        params: CatchParams | None = None,
        **overrides: Any,
    ) -> None:
        args = (obs_type, params, overrides, 1, frame_size, frame_stack)
        self.params, _, size, depth, _ = check_env_args("CatchEnv", *args)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"CatchEnv: render_mode must be None, 'human' or 'rgb_array', got {render_mode!r}"
            )
        self.obs_type, self.render_mode, self.frame_stack = obs_type, render_mode, depth
        self.renderer = render.FrameRenderer(self.params, size)
        self.action_space = gym.spaces.Discrete(3)
        self.batch: BatchState | None = None  # the game, a batch of one
        self._stack = render.FrameStack(self.renderer, 1, depth) if obs_type == "pixels" else None
        self._window: Any = None
        self._needs_reset = True
        sample = core.reset_batch(self.params, [np.random.default_rng(0)])  # a throw-away game
        self.observation_space = observation_space(obs_type, self._observe(sample, fresh=True))

    @property
    def state(self) -> CatchState | None:
        """The game's state (``None`` before the first ``reset``)."""
        return None if self.batch is None else self.batch.get(0)

    @state.setter
    def state(self, state: CatchState) -> None:
        core.check_int_range("CatchEnv.state paddle_x", state.paddle_x, 0, self.params.paddle_max_x)
        self.batch = BatchState.of([state])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A new game; ``seed`` seeds ``self.np_random``; ``options`` may set the start."""
        start = core.check_reset_options(self.params, options, "CatchEnv")
        super().reset(seed=seed)
        self.batch = core.reset_batch(self.params, [self.np_random], **start)
        self._needs_reset = False
        return self._observe(self.batch, fresh=True), self._draw_and_info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Play one step; see the class docstring for rewards and episode end."""
        if self._needs_reset or self.batch is None:
            raise ResetNeeded("CatchEnv: call reset() before step() (and after a game ends)")
        a = np.array([check_action(action)])
        self.batch, reward, ended = core.step_batch(self.params, self.batch, a, [self.np_random])
        terminated = self._needs_reset = ended.item()
        obs, info = self._observe(self.batch, fresh=False), self._draw_and_info()
        info.update({"is_success": info["missed"] == 0} if terminated else {})
        return obs, reward.item(), terminated, False, info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the full screen as uint8 ``(H, W, 3)``; ``human``: draw the window."""
        if self.render_mode is None:
            gym.logger.warn("CatchEnv.render() without a render_mode; pass 'rgb_array' or 'human'")
            return None
        if self.batch is None:
            raise ResetNeeded("CatchEnv: call reset() before render()")
        if self.render_mode == "rgb_array":
            return render.screen_rgb(self.params, self.batch.get(0))
        if self._window is None:
            from catchrl.envs.window import CatchWindow

            fps, scale = self.metadata["render_fps"], render.screen_scale(self.params)
            self._window = CatchWindow(self.params, fps=fps, scale=scale, dummy=True)
        self._window.draw(self.state)
        return None

    def close(self) -> None:
        """Close the window if one is open; safe twice. ``reset``/``render`` work after it."""
        if self._window is not None:
            self._window.close()
            self._window = None

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Keys for ``gymnasium.utils.play.play(env, noop=1)``: the arrows, both = stay."""
        import pygame as pg

        return {(pg.K_LEFT,): 0, (pg.K_RIGHT,): 2, (pg.K_LEFT, pg.K_RIGHT): 1}

    def __getstate__(self) -> dict[str, Any]:
        """For ``copy.deepcopy`` and ``pickle``: everything but an open window."""
        return {**self.__dict__, "_window": None}  # the copy opens its own window

    def _draw_and_info(self) -> dict[str, Any]:
        """The infos of the game now; in ``human`` mode, the window drawn first (as CartPole)."""
        if self.render_mode == "human":
            self.render()
        return {k: getattr(self.batch, k).item() for k in ("caught", "missed", "balls_left")}

    def _observe(self, b: BatchState, fresh: bool) -> np.ndarray:
        if self._stack is not None:
            stack, xy = self._stack, (b.ball_x, b.ball_y, b.paddle_x)
            return (stack.reset([0], *xy) if fresh else stack.push(*xy))[0].copy()
        x, y, px = b.ball_x.item(), b.ball_y.item(), b.paddle_x.item()  # one game: ints
        if self.obs_type == "state":
            return state_features(self.params, x, y, b.ball_vx.item(), px)
        return grid_boards(self.params, x, y, px)
