"""What an agent sees besides pixels (:mod:`catchrl.envs.render`): the state or bsuite's grid."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from catchrl.envs.core import CatchParams
from catchrl.envs.render import draw_world

OBS_TYPES = ("pixels", "state", "grid")
N, A = int | np.ndarray, np.ndarray  # one game's value or N games'; an array


def state_features(params: CatchParams, ball_x: N, ball_y: N, ball_vx: N, paddle_x: N) -> A:
    """The ``state`` observation of one game (``[3]``) or N (``[N, 3]``), float32 rounded once.

    Ball x / width, ball y / height, paddle x / width (+ x-speed / drift with drift).
    """
    cols = [ball_x / params.width, ball_y / params.height, paddle_x / params.width]
    if params.drift:
        cols.append(ball_vx / params.drift)
    rows = np.array(cols, dtype=np.float32)  # [F, ...]
    return rows if rows.ndim == 1 else np.ascontiguousarray(np.moveaxis(rows, 0, -1))


def grid_boards(params: CatchParams, ball_x: N, ball_y: N, paddle_x: N) -> np.ndarray:
    """Bsuite's board of one game (ints: ``[height, width]``) or N (``[N, height, width]``).

    Float32, 1 on the ball's and the paddle's cells; parts off the board are cut off.
    """
    p, b = params, params.ball_size
    if np.ndim(ball_x) == 0:  # one game: two rectangles, by slices
        return draw_world(p, ball_x, ball_y, paddle_x, 1.0, np.float32)
    bx, by, px = (np.asarray(a, np.int64).reshape(-1, 1) for a in (ball_x, ball_y, paddle_x))
    boards = np.zeros((len(bx), p.height, p.width), dtype=np.float32)
    # c lies in [lo, lo + n) when c - lo, as unsigned, is below n. The paddle's rows are on board.
    paddle_cols = (np.arange(p.width) - px).view(np.uint64) < p.paddle_width  # [N, width]
    boards[:, p.paddle_y : p.paddle_y + p.paddle_height] = paddle_cols[:, None, :]
    span = np.arange(b)
    rows, cols = by + span, bx + span  # [N, ball_size] each
    in_rows, in_cols = rows.view(np.uint64) < p.height, cols.view(np.uint64) < p.width
    inside = in_rows[:, :, None] & in_cols[:, None, :]
    first = np.arange(len(bx))[:, None] * p.height
    cells = ((first + rows) * p.width)[:, :, None] + cols[:, None, :]  # [N, ball_size, ball_size]
    boards.reshape(-1)[cells if inside.all() else cells[inside]] = 1.0
    return boards


def observation_space(obs_type: str, sample: np.ndarray) -> spaces.Box:
    """The Box of one observation, derived from an observation actually returned."""
    if obs_type != "state":  # grey levels or bsuite's 0/1 cells
        return spaces.Box(0, 255 if obs_type == "pixels" else 1, sample.shape, sample.dtype)
    low = np.zeros_like(sample)
    low[3:] = -1.0  # the drift speed column, with drift
    return spaces.Box(low, np.ones_like(sample), dtype=sample.dtype)
