"""Lookup tables of frame pieces by position, that the frame-stack engines draw from.

Where ball and paddle share no pixel, a frame is a ball patch (a function of
the ball's position alone) plus the paddle's band (a function of the paddle's
x alone). :class:`FramePieces` tabulates both, per world position, from the
rasteriser's own coverages (:class:`~catchrl.envs.raster.FrameRenderer`), so
the engines (:mod:`catchrl.envs.framestack`, :mod:`catchrl.envs.batch_framestack`)
draw bit for bit the renderer's frames without calling it each step.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from catchrl.envs.core import CatchParams
from catchrl.envs.raster import FrameRenderer, grey_levels

__all__ = ["TABLE_MAX_BYTES", "FramePieces", "paddle_rows", "shared_pieces"]

TABLE_MAX_BYTES = 64 << 20
"""Largest table of ball patches kept; for larger worlds the patches are computed each time."""


@functools.lru_cache(maxsize=16)
def shared_pieces(params: CatchParams, size: int) -> FramePieces:
    """One :class:`FramePieces` per game and frame size, shared by all envs that draw it."""
    return FramePieces(FrameRenderer(params, size))


def _touched(start: np.ndarray, cov: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``[lo, hi)`` with non-zero coverage, per window (none: ``(size + 1, -1)``)."""
    nz = cov > 0
    n = cov.shape[1]
    first = np.argmax(nz, axis=1)
    last = n - 1 - np.argmax(nz[:, ::-1], axis=1)
    some = nz.any(axis=1)
    return (
        np.where(some, start + first, size + 1).astype(np.int64),
        np.where(some, start + last + 1, -1).astype(np.int64),
    )


def paddle_rows(renderer: FrameRenderer) -> tuple[int, np.ndarray, int, int]:
    """The paddle's rows in a frame: ``(window_row0, fy [1, paddle_h], first, end)``.

    ``fy`` is the covered fraction of each row of the paddle's window; the
    paddle touches rows ``first .. end - 1`` (its band). Cheap: one window.
    """
    r, p = renderer, renderer.params
    py = np.array([float(p.paddle_y)])
    row0 = r.window_start(py, r.sy, r.paddle_h)
    fy = r.coverage(py, py + p.paddle_height, row0, r.paddle_h, r.sy)
    first, end = _touched(row0, fy, r.size)
    return int(row0[0]), fy, int(first[0]), int(end[0])


class FramePieces:
    """Per-position pieces of the frames a :class:`FrameRenderer` draws.

    Where no pixel is touched by both the ball and the paddle, a frame is zero
    except for a ball patch, a function of the ball's position alone, and the
    paddle's band (the rows the paddle touches, full width), a function of the
    paddle's x alone. Their values are bit for bit the renderer's: of its
    sum ``cov(ball) + cov(paddle) - cov(both)`` at most one term is then
    non-zero in any pixel. Where both touch one pixel, :meth:`joint` gives the
    renderer's own values. Patches are ``rint(255 * fy * fx)`` from the
    per-row and per-column coverages tabulated here.

    Tables are indexed by world coordinates over every position the game can
    reach: ball x in ``[0, width]``, ball y in ``[0, height]``, paddle x in
    ``[0, width - paddle_width]``.

    Attributes:
        size: Side of a frame.
        ball_h: Rows of the ball window.
        ball_w: Columns of the ball window.
        ball_row0: int64 ``[height + 1]``: first row of the ball window, by ball y.
        ball_col0: int64 ``[width + 1]``: first column of the ball window, by ball x.
        ball_fy: float64 ``[height + 1, ball_h]``: covered fraction of each window row.
        ball_fx: float64 ``[width + 1, ball_w]``: covered fraction of each window column.
        ball_fr0: First row the ball touches, by ball y (``ball_fr1``: one past the last).
        ball_fr1: See ``ball_fr0``.
        ball_fc0: First column the ball touches, by ball x (``ball_fc1``: one past the last).
        ball_fc1: See ``ball_fc0``.
        paddle_row0: First row of the paddle window.
        paddle_h: Rows of the paddle window.
        band_row0: First row the paddle touches: the band is the rows it touches, full width.
        band_h: Rows of the band.
        paddle_w: Columns of the paddle window.
        paddle_col0: int64 ``[paddle_max_x + 1]``: first column of the paddle window.
        paddle_fc0: First column the paddle touches, by paddle x (``paddle_fc1``: one past).
        paddle_fc1: See ``paddle_fc0``.
        band: uint8 ``[paddle_max_x + 1, band_h, size]``: the band's pixels, by paddle x.
        ball_meets_band: bool ``[height + 1]``: the ball's rows meet the paddle's, by ball y.

    """

    def __init__(self, renderer: FrameRenderer) -> None:
        r, p, s = renderer, renderer.params, renderer.size
        self.renderer, self.size = r, s
        self.ball_h, self.ball_w = r.ball_h, r.ball_w
        ys = np.arange(p.height + 1, dtype=np.float64)
        xs = np.arange(p.width + 1, dtype=np.float64)
        self.ball_row0 = r.window_start(ys, r.sy, r.ball_h)
        self.ball_col0 = r.window_start(xs, r.sx, r.ball_w)
        self.ball_fy = r.coverage(ys, ys + p.ball_size, self.ball_row0, r.ball_h, r.sy)
        self.ball_fx = r.coverage(xs, xs + p.ball_size, self.ball_col0, r.ball_w, r.sx)
        self.ball_fr0, self.ball_fr1 = _touched(self.ball_row0, self.ball_fy, s)
        self.ball_fc0, self.ball_fc1 = _touched(self.ball_col0, self.ball_fx, s)

        row0, fy, self.paddle_fr0, self.paddle_fr1 = paddle_rows(r)  # fy: [1, paddle_h]
        self.paddle_row0, self.paddle_h, self.paddle_w = row0, r.paddle_h, r.paddle_w
        self.band_row0, self.band_h = self.paddle_fr0, self.paddle_fr1 - self.paddle_fr0
        fy = fy[:, self.band_row0 - self.paddle_row0 : self.paddle_fr1 - self.paddle_row0]
        pxs = np.arange(p.paddle_max_x + 1, dtype=np.float64)
        self.paddle_col0 = r.window_start(pxs, r.sx, r.paddle_w)
        fx = r.coverage(pxs, pxs + p.paddle_width, self.paddle_col0, r.paddle_w, r.sx)
        self.paddle_fc0, self.paddle_fc1 = _touched(self.paddle_col0, fx, s)
        values = grey_levels(fy[:, :, None] * fx[:, None, :])
        self.band = np.zeros((len(pxs), self.band_h, s), dtype=np.uint8)
        cols = self.paddle_col0[:, None] + np.arange(self.paddle_w)  # [PX, paddle_w]
        self.band[
            np.arange(len(pxs))[:, None, None],
            np.arange(self.band_h)[None, :, None],
            cols[:, None, :],
        ] = values
        self.ball_meets_band = (self.ball_fr0 < self.paddle_fr1) & (self.paddle_fr0 < self.ball_fr1)
        # ball patches by (y, x), rows filled as balls reach them; None if too large a world
        shape = (len(self.ball_row0), len(self.ball_col0), self.ball_h * self.ball_w)
        fits = math.prod(shape) <= TABLE_MAX_BYTES
        self._table = np.zeros(shape, dtype=np.uint8) if fits else None
        self._patch_rows_done = np.zeros(shape[0], dtype=bool)

    def in_range(self, ball_x: int, ball_y: int, paddle_x: int) -> bool:
        """Whether the tables cover this position."""
        return (
            0 <= ball_x < len(self.ball_col0)
            and 0 <= ball_y < len(self.ball_row0)
            and 0 <= paddle_x < len(self.band)
        )

    def ball_patches(self, ball_x: np.ndarray, ball_y: np.ndarray) -> np.ndarray:
        """uint8 values of N ball windows alone: ``[N, ball_h * ball_w]`` (rows concatenated)."""
        table = self._table
        if table is None:  # too large a world to tabulate: compute them
            cov = self.ball_fy[ball_y][:, :, None] * self.ball_fx[ball_x][:, None, :]
            return grey_levels(cov).reshape(len(cov), -1)
        if not self._patch_rows_done[ball_y].all():
            for y in np.unique(ball_y[~self._patch_rows_done[ball_y]]):
                self.ball_patch_row(int(y))
        return table[ball_y, ball_x]

    def ball_patch_row(self, ball_y: int) -> np.ndarray:
        """uint8 ball windows of every ball x at this ball y: ``[width + 1, ball_h * ball_w]``."""
        table = self._table
        if table is not None and self._patch_rows_done[ball_y]:
            return table[ball_y]
        cov = self.ball_fy[ball_y][None, :, None] * self.ball_fx[:, None, :]
        row = grey_levels(cov).reshape(len(cov), -1)
        if table is not None:
            table[ball_y] = row
            self._patch_rows_done[ball_y] = True
        return row

    def shares_pixels(
        self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray
    ) -> np.ndarray:
        """Bool ``[N]``: ball and paddle may touch one pixel (then use :meth:`joint`)."""
        return (
            self.ball_meets_band[ball_y]
            & (self.ball_fc0[ball_x] < self.paddle_fc1[paddle_x])
            & (self.paddle_fc0[paddle_x] < self.ball_fc1[ball_x])
        )

    def joint(
        self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The renderer's values over a window holding both ball and paddle windows.

        Returns:
            ``(row0 [N], col0 [N], values [N, h, w])``; pixels of the window
            outside both of the renderer's windows are 0, as in its frames.

        """
        s, r = self.size, self.renderer
        rb, cb = self.ball_row0[ball_y], self.ball_col0[ball_x]
        rp, cp = self.paddle_row0, self.paddle_col0[paddle_x]
        row0, col0 = np.minimum(rb, rp), np.minimum(cb, cp)
        h = int((np.maximum(rb + self.ball_h, rp + self.paddle_h) - row0).max())
        w = int((np.maximum(cb + self.ball_w, cp + self.paddle_w) - col0).max())
        row0, col0 = np.minimum(row0, s - h), np.minimum(col0, s - w)
        as_f = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731 - as FrameRenderer.patches
        values = r.union_values(as_f(ball_x), as_f(ball_y), as_f(paddle_x), col0, row0, w, h)
        rows = (row0[:, None] + np.arange(h))[:, :, None]  # [N, h, 1]
        cols = (col0[:, None] + np.arange(w))[:, None, :]  # [N, 1, w]
        in_ball = (
            (rows >= rb[:, None, None])
            & (rows < (rb + self.ball_h)[:, None, None])
            & (cols >= cb[:, None, None])
            & (cols < (cb + self.ball_w)[:, None, None])
        )
        in_paddle = (
            (rows >= rp)
            & (rows < rp + self.paddle_h)
            & (cols >= cp[:, None, None])
            & (cols < (cp + self.paddle_w)[:, None, None])
        )
        values[~(in_ball | in_paddle)] = 0
        return row0, col0, values
