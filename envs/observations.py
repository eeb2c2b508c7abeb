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

__all__ = [
    "OBS_TYPES",
    "GridBoards",
    "grid_boards",
    "make_params",
    "observation_space",
    "state_features",
]

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
    ball_x: int | np.ndarray,
    ball_y: int | np.ndarray,
    ball_vx: int | np.ndarray,
    paddle_x: int | np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The ``state`` observation: float32 ``[..., 3]`` (``[..., 4]`` with drift).

    The one implementation, for one game (ints: ``[3]``) and for N (arrays
    ``[N]``: ``[N, 3]``). Columns: ball left edge / width, ball top edge /
    height, paddle left edge / width, and with ``drift > 0`` the ball's
    horizontal speed / drift (in [-1, 1]). Positions lie in [0, 1]. Each
    column is computed in float64 and rounded once to float32.

    Args:
        params: The game (its width, height and drift).
        ball_x: Ball left edges, an int or int array ``[...]``; likewise the others.
        ball_y: Ball top edges.
        ball_vx: Ball horizontal speeds.
        paddle_x: Paddle left edges.
        out: A float32 ``[..., F]`` array to write into and return (the vector
            env's buffer); a new one if ``None``.

    """
    cols = [ball_x / params.width, ball_y / params.height, paddle_x / params.width]
    if params.drift:
        cols.append(ball_vx / params.drift)
    if out is None:
        rows = np.array(cols, dtype=np.float32)  # [F, ...]
        return rows if rows.ndim == 1 else np.ascontiguousarray(np.moveaxis(rows, 0, -1))
    for k, col in enumerate(cols):
        out[..., k] = col
    return out


def grid_boards(
    params: CatchParams,
    ball_x: int | np.ndarray,
    ball_y: int | np.ndarray,
    paddle_x: int | np.ndarray,
) -> np.ndarray:
    """Bsuite's board: float32 ``[..., height, width]``, 1 on ball and paddle cells.

    The one implementation, for one game (ints: ``[height, width]``) and for N
    (arrays ``[N]``: ``[N, height, width]``). A cell is on where the ball's or
    the paddle's rectangle covers it; parts outside the board are cut off.
    One game is drawn with two slice assignments (the same cells: a parity
    test plays both against each other), N games with masks.
    """
    if not isinstance(ball_x, np.ndarray) or ball_x.ndim == 0:
        board = np.zeros((params.height, params.width), dtype=np.float32)
        b, top, left = params.ball_size, int(ball_y), int(ball_x)
        board[max(top, 0) : max(top + b, 0), max(left, 0) : max(left + b, 0)] = 1.0
        p0, px = params.paddle_y, int(paddle_x)
        rows_on = slice(max(p0, 0), max(p0 + params.paddle_height, 0))
        board[rows_on, max(px, 0) : max(px + params.paddle_width, 0)] = 1.0
        return board
    rows, cols = np.arange(params.height), np.arange(params.width)
    bx, by, px = (np.asarray(a)[..., None] for a in (ball_x, ball_y, paddle_x))
    b = params.ball_size
    on = _inside(rows, by, b)[..., :, None] & _inside(cols, bx, b)[..., None, :]  # [..., H, W]
    paddle_rows = _inside(rows, params.paddle_y, params.paddle_height)[:, None]  # [H, 1]
    on |= paddle_rows & _inside(cols, px, params.paddle_width)[..., None, :]
    return on.astype(np.float32)


class GridBoards:
    """N grid boards in one float32 ``[N, height, width]`` array, redrawn incrementally.

    The vector env's fast path for :func:`grid_boards` (which stays the
    definition; ``tests/envs/test_grid_boards.py`` plays the two against each
    other): a step clears the cells the balls and paddles covered and sets the
    ones they cover now (flat indexing with the cells' indices, kept from the
    last draw), touching ``N * (ball_size**2 + paddle cells)`` floats instead of
    computing all ``N * height * width``. Whatever changed in between (steps,
    restarts, a restored snapshot), :meth:`draw` leaves exactly the boards
    :func:`grid_boards` returns for the positions given, as long as nothing
    else writes into :attr:`boards`.

    Ball cells off the board (``spawn="book"`` starts balls up to ``x =
    width``) are pointed at the game's first paddle cell, which is set on the
    same draw, so no index leaves the game's board.

    Args:
        params: The game (board size, ball and paddle sizes).
        num: Number of games N.

    """

    def __init__(self, params: CatchParams, num: int) -> None:
        h, w, b = params.height, params.width, params.ball_size
        self.boards = np.zeros((num, h, w), dtype=np.float32)
        self._w = w
        base = np.arange(num, dtype=np.intp) * (h * w)
        self._base = base
        self._paddle_base = base + params.paddle_y * w  # [N]: each game's paddle row
        rows, cols = np.arange(b), np.arange(b)
        self._ball_offsets = (rows[:, None] * w + cols[None, :]).ravel()  # [b * b]
        self._ball_cols = np.tile(cols, b)  # column offset of each ball cell
        prow, pcol = np.arange(params.paddle_height), np.arange(params.paddle_width)
        self._paddle_offsets = (prow[:, None] * w + pcol[None, :]).ravel()
        self._single = b == 1 and self._paddle_offsets.size == 1
        self._clip = params.spawn_max_x + b > w  # a ball may stick out on the right
        self._cells: tuple[np.ndarray, np.ndarray] | None = None  # what is drawn now

    def draw(self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray) -> np.ndarray:
        """Make :attr:`boards` the boards of these positions (int ``[N]`` each); returns it."""
        paddle = self._paddle_base + paddle_x
        ball = self._base + ball_y * self._w
        ball += ball_x
        if not self._single:
            ball = ball[:, None] + self._ball_offsets
            paddle = paddle[:, None] + self._paddle_offsets
        if self._clip:
            cols = ball_x[:, None] + self._ball_cols if ball.ndim == 2 else ball_x
            first = paddle if paddle.ndim == 1 else paddle[:, :1]
            ball = np.where((cols >= 0) & (cols < self._w), ball, first)
        flat = self.boards.reshape(-1)  # a view (indexing it is twice as fast as put)
        if self._cells is not None:
            flat[self._cells[0]] = 0.0
            flat[self._cells[1]] = 0.0
        flat[ball] = 1.0
        flat[paddle] = 1.0
        self._cells = (ball, paddle)
        return self.boards


def _inside(axis: np.ndarray, lo: int | np.ndarray, n: int) -> np.ndarray:
    """Bool ``[..., len(axis)]``: which of the int64 ``axis`` values lie in ``[lo, lo + n)``.

    One comparison: seen unsigned, ``axis - lo`` is below ``n`` exactly there.
    """
    return np.less(np.subtract(axis, lo).view(np.uint64), n)


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
