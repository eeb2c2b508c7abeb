"""What an agent sees: pixels (stacked grey frames), a state vector, or bsuite's grid.

Shared by :class:`~catchrl.envs.CatchEnv` and :class:`~catchrl.envs.CatchVectorEnv`
so both return the very same arrays. Spaces are derived from an observation
actually produced, so shape and dtype cannot drift apart from what is returned.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from gymnasium import spaces

from catchrl.envs.core import CatchParams

__all__ = ["OBS_TYPES", "grid_boards", "make_params", "observation_space", "state_features"]

OBS_TYPES = ("pixels", "state", "grid")
_PARAM_NAMES = tuple(f.name for f in dataclasses.fields(CatchParams))


def make_params(
    obs_type: str, params: CatchParams | None, overrides: dict[str, Any], owner: str
) -> CatchParams:
    """Check ``obs_type`` and build the game's parameters from keyword overrides.

    ``grid`` starts from bsuite's 10 x 5 board (:meth:`CatchParams.bsuite`), the
    others from the book's game.

    Raises:
        ValueError: unknown observation type.
        TypeError: unknown keyword, or both ``params`` and overrides given.

    """
    if obs_type not in OBS_TYPES:
        raise ValueError(f"{owner}: unknown obs_type {obs_type!r}; choose one of {OBS_TYPES}")
    unknown = sorted(set(overrides) - set(_PARAM_NAMES))
    if unknown:
        raise TypeError(
            f"{owner}: unknown argument(s) {unknown}; game parameters are "
            f"{list(_PARAM_NAMES)} (plus obs_type, frame_size, frame_stack, "
            "render_mode)"
        )
    if params is not None:
        if overrides:
            raise TypeError(f"{owner}: give either params= or keyword overrides, not both")
        if not isinstance(params, CatchParams):
            raise TypeError(f"{owner}: params must be a CatchParams, got {type(params).__name__}")
        return params
    return CatchParams.bsuite(**overrides) if obs_type == "grid" else CatchParams(**overrides)


def state_features(
    params: CatchParams,
    ball_x: np.ndarray,
    ball_y: np.ndarray,
    ball_vx: np.ndarray,
    paddle_x: np.ndarray,
) -> np.ndarray:
    """The ``state`` observation of N games: float32 ``[N, 3]`` (``[N, 4]`` with drift).

    Columns: ball left edge / width, ball top edge / height, paddle left edge /
    width, and with ``drift > 0`` the ball's horizontal speed / drift (in
    [-1, 1]). Positions lie in [0, 1].
    """
    cols = [ball_x / params.width, ball_y / params.height, paddle_x / params.width]
    if params.drift:
        cols.append(ball_vx / params.drift)
    return np.stack(cols, axis=-1).astype(np.float32)


def grid_boards(
    params: CatchParams, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray
) -> np.ndarray:
    """Bsuite's board of N games: float32 ``[N, height, width]``, 1 on ball and paddle cells."""
    n = len(ball_x)
    boards = np.zeros((n, params.height, params.width), dtype=np.float32)
    rows = np.arange(params.height)[None, :, None]
    cols = np.arange(params.width)[None, None, :]
    bx, by, px = (np.asarray(a)[:, None, None] for a in (ball_x, ball_y, paddle_x))
    b = params.ball_size
    ball = (rows >= by) & (rows < by + b) & (cols >= bx) & (cols < bx + b)
    paddle = (
        (rows >= params.paddle_y)
        & (rows < params.paddle_y + params.paddle_height)
        & (cols >= px)
        & (cols < px + params.paddle_width)
    )
    boards[ball | paddle] = 1.0
    return boards


def observation_space(obs_type: str, sample: np.ndarray) -> spaces.Box:
    """The Box of one observation, derived from an observation actually returned."""
    if obs_type == "pixels":
        return spaces.Box(0, 255, shape=sample.shape, dtype=sample.dtype)
    if obs_type == "grid":
        return spaces.Box(0.0, 1.0, shape=sample.shape, dtype=sample.dtype)
    low = np.zeros(sample.shape, dtype=sample.dtype)
    if sample.shape[-1] == 4:  # the drift speed column
        low[-1] = -1.0
    return spaces.Box(low, np.ones(sample.shape, dtype=sample.dtype), dtype=sample.dtype)
