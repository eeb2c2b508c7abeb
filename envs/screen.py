"""The full-size screen, and the area average that defines a learning frame.

:func:`render_screen` draws a state at the world's own size (what the pygame
window and ``render_mode="rgb_array"`` show). :func:`area_downscale` of that
screen is the plain definition of a small grey frame; the rasteriser
(:class:`~catchrl.envs.raster.FrameRenderer`) computes the same frames without
drawing the screen, and is tested against these two.
"""

from __future__ import annotations

import numpy as np

from catchrl.envs.core import CatchParams, CatchState

__all__ = ["area_downscale", "render_screen", "screen_rgb", "screen_scale"]


def render_screen(params: CatchParams, state: CatchState) -> np.ndarray:
    """The full ``[height, width]`` uint8 screen: 255 on the ball and paddle, 0 elsewhere."""
    screen = np.zeros((params.height, params.width), dtype=np.uint8)
    b, p = params.ball_size, params
    screen[max(state.ball_y, 0) : state.ball_y + b, max(state.ball_x, 0) : state.ball_x + b] = 255
    screen[
        p.paddle_y : p.paddle_y + p.paddle_height, state.paddle_x : state.paddle_x + p.paddle_width
    ] = 255
    return screen


def screen_scale(params: CatchParams) -> int:
    """Screen pixels per world pixel: grid cells are scaled up to about 400 px to be visible."""
    return max(1, 400 // max(params.width, params.height))


def screen_rgb(params: CatchParams, state: CatchState) -> np.ndarray:
    """What ``render_mode="rgb_array"`` returns: the screen as uint8 ``(H, W, 3)``.

    Scaled up by :func:`screen_scale`; the single and the vector env's ``render``.
    """
    screen = render_screen(params, state)
    k = screen_scale(params)
    if k > 1:
        screen = np.kron(screen, np.ones((k, k), dtype=np.uint8))
    return np.repeat(screen[:, :, None], 3, axis=2)


def area_downscale(screen: np.ndarray, size: int) -> np.ndarray:
    """Area-average a ``[H, W]`` screen to ``[size, size]`` (H and W multiples of size), rounded."""
    h, w = screen.shape
    if h % size or w % size:
        raise ValueError(f"screen {h}x{w} is not a whole multiple of {size}")
    blocks = screen.reshape(size, h // size, size, w // size).astype(np.float64)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)
