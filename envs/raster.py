"""The coverage rasteriser: game states straight into small grey frames.

:class:`FrameRenderer` rasterises states into ``size x size`` uint8 frames
without drawing the ``width x height`` screen first. A pixel's value is
``round(255 * covered fraction)`` of its block of the world, which is exactly
what an area-averaging downscale of the full 0/255 screen gives
(:func:`~catchrl.envs.screen.area_downscale` of
:func:`~catchrl.envs.screen.render_screen`, the plain definition it is tested
against). The covered fraction of the union of ball and paddle is
``cov(ball) + cov(paddle) - cov(ball ∩ paddle)``, and each term is separable
(an x-coverage times a y-coverage), so only two small windows per frame are
computed: one around the ball, one around the paddle.
"""

from __future__ import annotations

import math

import numpy as np

from catchrl.envs.core import CatchParams, CatchState
from catchrl.envs.limits import MAX_FRAME_SIZE, check_int_range

__all__ = ["FrameRenderer", "check_frame_size", "grey_levels"]


def grey_levels(cov: np.ndarray) -> np.ndarray:
    """Covered fractions to grey levels ``round(255 * cov)``, half-way ties to even.

    The fractions come from sums of float products, so a value that is exactly
    a half level (e.g. 127.5) may land a hair off it; rounding to 6 decimals
    first makes ties land on the tie, as the exact area average does.
    """
    return np.rint(np.round(cov * 255.0, 6)).astype(np.uint8)


def check_frame_size(size: object) -> int:
    """``size`` as an int in ``[1, MAX_FRAME_SIZE]``, or a ``ValueError`` naming ``frame_size``."""
    return check_int_range("frame_size", size, 1, MAX_FRAME_SIZE, "the frame size in px")


class FrameRenderer:
    """Rasterise N states at once into ``[N, size, size]`` uint8 frames.

    Args:
        params: The game's geometry.
        size: Side of the square frame in pixels (book: 80).

    """

    def __init__(self, params: CatchParams, size: int = 80) -> None:
        size = check_frame_size(size)
        self.params, self.size = params, size
        self.sx, self.sy = params.width / size, params.height / size
        # Window sizes: enough pixels to hold any placement of the rectangle.
        self.ball_w = min(size, math.ceil(params.ball_size / self.sx) + 1)
        self.ball_h = min(size, math.ceil(params.ball_size / self.sy) + 1)
        self.paddle_w = min(size, math.ceil(params.paddle_width / self.sx) + 1)
        self.paddle_h = min(size, math.ceil(params.paddle_height / self.sy) + 1)

    def window_start(self, lo: np.ndarray, scale: float, n: int) -> np.ndarray:
        """First pixel of an n-pixel window that holds a rectangle starting at ``lo``.

        ``n`` is one of the renderer's window sizes, which hold any placement of
        their rectangle; the window is moved inside the frame where it would
        stick out.
        """
        start = np.floor(lo / scale).astype(np.int64)
        return np.clip(start, 0, self.size - n)

    @staticmethod
    def coverage(
        lo: np.ndarray, hi: np.ndarray, start: np.ndarray, n: int, scale: float
    ) -> np.ndarray:
        """Covered fraction of pixels ``start .. start+n-1`` by ``[lo, hi)``: ``[N, n]``."""
        edge = (start[:, None] + np.arange(n)) * scale  # [N, n] left edges
        lo, hi = lo[:, None], hi[:, None]
        return np.clip(np.minimum(hi, edge + scale) - np.maximum(lo, edge), 0.0, scale) / scale

    def union_values(
        self,
        bx: np.ndarray,
        by: np.ndarray,
        px: np.ndarray,
        c0: np.ndarray,
        r0: np.ndarray,
        nw: int,
        nh: int,
    ) -> np.ndarray:
        """uint8 values of the union of ball and paddle over a window: ``[N, nh, nw]``."""
        p = self.params
        b, sx, sy = p.ball_size, self.sx, self.sy
        py = np.full_like(by, p.paddle_y)
        ix0, ix1 = np.maximum(bx, px), np.minimum(bx + b, px + p.paddle_width)
        iy0, iy1 = np.maximum(by, py), np.minimum(by + b, py + p.paddle_height)
        cov = (
            self.coverage(by, by + b, r0, nh, sy)[:, :, None]
            * self.coverage(bx, bx + b, c0, nw, sx)[:, None, :]
        )
        cov += (
            self.coverage(py, py + p.paddle_height, r0, nh, sy)[:, :, None]
            * self.coverage(px, px + p.paddle_width, c0, nw, sx)[:, None, :]
        )
        cov -= (
            self.coverage(iy0, iy1, r0, nh, sy)[:, :, None]
            * self.coverage(ix0, ix1, c0, nw, sx)[:, None, :]
        )
        return grey_levels(cov)

    def patches(
        self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The non-zero parts of N frames as windows ``(row0 [N], col0 [N], values [N, h, w])``.

        Ball window first, paddle window second; where they overlap both hold
        the same (union) values, so writing both in any order is correct.
        """
        p = self.params
        bx, by, px = (np.asarray(a, dtype=np.float64) for a in (ball_x, ball_y, paddle_x))
        py = np.full_like(by, p.paddle_y)
        out = []
        for x, y, nw, nh in (
            (bx, by, self.ball_w, self.ball_h),
            (px, py, self.paddle_w, self.paddle_h),
        ):
            c0 = self.window_start(x, self.sx, nw)
            r0 = self.window_start(y, self.sy, nh)
            out.append((r0, c0, self.union_values(bx, by, px, c0, r0, nw, nh)))
        return out

    def draw(
        self, frames: np.ndarray, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray
    ) -> None:
        """Draw N states into zeroed ``frames[N, size, size]`` (uint8, in place)."""
        n = np.arange(frames.shape[0])[:, None, None]
        for r0, c0, vals in self.patches(ball_x, ball_y, paddle_x):
            h, w = vals.shape[1:]
            rows = r0[:, None, None] + np.arange(h)[None, :, None]
            cols = c0[:, None, None] + np.arange(w)[None, None, :]
            frames[n, rows, cols] = vals

    def render(self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray) -> np.ndarray:
        """N states as new ``[N, size, size]`` uint8 frames."""
        frames = np.zeros((len(np.atleast_1d(ball_x)), self.size, self.size), dtype=np.uint8)
        self.draw(frames, np.atleast_1d(ball_x), np.atleast_1d(ball_y), np.atleast_1d(paddle_x))
        return frames

    def render_state(self, state: CatchState) -> np.ndarray:
        """One state as a ``[size, size]`` uint8 frame."""
        return self.render(
            np.array([state.ball_x]), np.array([state.ball_y]), np.array([state.paddle_x])
        )[0]
