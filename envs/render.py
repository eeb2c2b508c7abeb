"""Frames of the game: the full screen, small grey frames equal to its area average, stacks.

A learning frame is :func:`render_screen` area-averaged to ``size x size``: a window of
grey levels around the ball and one around the paddle (:class:`FrameRenderer`),
drawn on top of a stack whose older frames shift one back (:class:`FrameStack`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from catchrl.envs.core import MAX_FRAME_SIZE, CatchParams, CatchState, check_int_range

A, N = np.ndarray, int | np.ndarray  # shapes in the docstrings; one game's or N games'


def render_screen(params: CatchParams, state: CatchState, scale: int = 1) -> np.ndarray:
    """The full ``[height, width]`` uint8 screen (x ``scale``): 255 on ball and paddle, else 0."""
    screen = draw_world(params, state.ball_x, state.ball_y, state.paddle_x, 255, np.uint8)
    return screen.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else screen


def draw_world(params: CatchParams, bx: int, by: int, px: int, on: float, dtype: Any) -> A:
    """The world ``[height, width]`` of ``dtype``: ``on`` on the ball and paddle, else 0.

    Parts off the world are cut off.
    """
    p, b = params, params.ball_size
    world = np.zeros((p.height, p.width), dtype)
    world[max(by, 0) : max(by + b, 0), max(bx, 0) : max(bx + b, 0)] = on
    world[p.paddle_y : p.paddle_y + p.paddle_height, max(px, 0) : max(px + p.paddle_width, 0)] = on
    return world


def screen_scale(params: CatchParams) -> int:
    """Screen pixels per world pixel: grid cells are scaled up to about 400 px to be visible."""
    return max(1, 400 // max(params.width, params.height))


def screen_rgb(params: CatchParams, state: CatchState) -> np.ndarray:
    """What ``render_mode="rgb_array"`` returns: the screen, scaled up, as uint8 ``(H, W, 3)``."""
    return np.repeat(render_screen(params, state, screen_scale(params))[:, :, None], 3, axis=2)


def check_frame_size(size: object) -> int:
    """``size`` as an int in ``[1, MAX_FRAME_SIZE]``, or a ``ValueError`` naming ``frame_size``."""
    return check_int_range("frame_size", size, 1, MAX_FRAME_SIZE, "the frame size in px")


def _levels(covered: A) -> A:
    """Grey levels of covered fractions, first rounded to 6 decimals (sums of float products)."""
    return np.rint((covered * 255.0).round(6)).astype(np.uint8)


def _coverage(lo: A, hi: A, start: N, n: int, scale: float) -> A:
    """Fractions ``[..., n]`` of n pixels from ``start`` that ``[lo, hi)`` covers."""
    edge = (np.asarray(start)[..., None] + np.arange(n)) * scale  # left edges
    covered = np.minimum(hi[..., None], edge + scale) - np.maximum(lo[..., None], edge)
    return np.minimum(np.maximum(covered, 0.0), scale) / scale


class FrameRenderer:
    """Rasterise states into ``[size, size]`` uint8 frames (book: 80 x 80).

    The grey windows of the ball and the paddle come from tables over positions,
    computed once (per frame where the tables would be large).
    """

    def __init__(self, params: CatchParams, size: int = 80) -> None:
        self.params, self.size = params, check_frame_size(size)
        self.sx, self.sy = params.width / size, params.height / size
        # Window sizes: enough pixels to hold any placement of the rectangle.
        self.ball_w = min(size, math.ceil(params.ball_size / self.sx) + 1)
        self.ball_h = min(size, math.ceil(params.ball_size / self.sy) + 1)
        self.paddle_w = min(size, math.ceil(params.paddle_width / self.sx) + 1)
        self.paddle_h = min(size, math.ceil(params.paddle_height / self.sy) + 1)
        y = np.array([float(params.paddle_y)])  # the paddle's rows are fixed
        row, cover = self._exact(y, params.paddle_height, self.sy, self.paddle_h)
        self.paddle_row, self._paddle_rows = int(row[0]), cover[0]

    def _exact(self, lo: A, length: int, scale: float, n: int) -> tuple[A, A]:
        """Window starts ``[N]``, coverages ``[N, n]`` of ``[lo, lo + length)``, float ``lo``."""
        start = np.clip(np.floor(lo / scale).astype(np.int64), 0, self.size - n)
        return start, _coverage(lo, lo + length, start, n, scale)

    @functools.cached_property
    def tables(self) -> tuple[tuple[A, ...], tuple[A, ...], A, A] | None:
        """Window starts and pattern indices per axis, grey windows per pattern (on first use).

        Axes: ball y, ball x, paddle x, over positions ``-length`` to the world's edge.
        Windows: balls ``[Py, Px, h, w]``, paddles ``[Pp, h, w]``. ``None``: too large.
        """
        p, b = self.params, self.params.ball_size
        axes = [(b, self.sy, self.ball_h, p.height), (b, self.sx, self.ball_w, p.width)]
        axes.append((p.paddle_width, self.sx, self.paddle_w, p.width))
        if any((length + extent + 1) * n > 1 << 18 for length, _, n, extent in axes):
            return None
        per_axis = []
        for length, scale, n, extent in axes:
            pos = np.arange(-length, extent + 1, dtype=np.float64)
            start, cover = self._exact(pos, length, scale, n)
            cover, index = np.unique(cover, axis=0, return_inverse=True)
            per_axis.append((start, index.reshape(-1), cover))
        starts, patterns, (cy, cx, cp) = zip(*per_axis, strict=True)
        if len(cy) * len(cx) * self.ball_h * self.ball_w > 1 << 18:
            return None
        ball = np.stack([_levels(row[:, None] * cx[:, None, :]) for row in cy])
        return starts, patterns, ball, _levels(self._paddle_rows[:, None] * cp[:, None, :])

    def _meet(self, r0: N, c0: N, pc: N) -> N:
        """Whether the ball's and the paddle's windows share pixels."""
        pr = self.paddle_row
        m = (r0 < pr + self.paddle_h) & (r0 > pr - self.ball_h)
        return m & (c0 < pc + self.paddle_w) & (pc < c0 + self.ball_w)

    def patch(self, bx: int, by: int, px: int) -> list[tuple[int, int, A]]:
        """:meth:`patches` of one game (ints): ``(row0, col0, levels [h, w])`` each."""
        t, b, pw = self.tables, self.params.ball_size, self.params.paddle_width
        if t is not None:
            (ys, xs, ps), (yi, xi, pi), balls, paddles = t
            iy, ix, ip = by + b, bx + b, px + pw
            if 0 <= iy < len(ys) and 0 <= ix < len(xs) and 0 <= ip < len(ps):
                r0, c0, pc = ys.item(iy), xs.item(ix), ps.item(ip)
                if not self._meet(r0, c0, pc):  # by slices of the tables
                    ball, paddle = balls[yi.item(iy), xi.item(ix)], paddles[pi.item(ip)]
                    return [(r0, c0, ball), (self.paddle_row, pc, paddle)]
        (r0, c0, ball), (pr, pc, paddle) = self.patches(*(np.array([v]) for v in (bx, by, px)))
        return [(r0[0], c0[0], ball[0]), (pr, pc[0], paddle[0])]

    def patches(self, ball_x: A, ball_y: A, paddle_x: A) -> list[tuple[A, A, A]]:
        """N frames' ball, then paddle windows ``(row0, col0, levels)``; where they meet: union."""
        p, t = self.params, self.tables
        bx, by, px = (np.asarray(a, dtype=np.int64) for a in (ball_x, ball_y, paddle_x))
        if t is None:  # large tables: the windows of these positions
            r0, cy = self._exact(by.astype(np.float64), p.ball_size, self.sy, self.ball_h)
            c0, cx = self._exact(bx.astype(np.float64), p.ball_size, self.sx, self.ball_w)
            pc, cp = self._exact(px.astype(np.float64), p.paddle_width, self.sx, self.paddle_w)
            ball = _levels(cy[:, :, None] * cx[:, None, :])
            paddle = _levels(self._paddle_rows[:, None] * cp[:, None, :])
        else:  # positions off the tables read their ends (which cover nothing either)
            (ys, xs, ps), (yi, xi, pi), balls, paddles = t
            iy, ix, ip = by + p.ball_size, bx + p.ball_size, px + p.paddle_width
            r0, c0, pc = (a.take(i, mode="clip") for a, i in ((ys, iy), (xs, ix), (ps, ip)))
            ball = balls[yi.take(iy, mode="clip"), xi.take(ix, mode="clip")]
            paddle = paddles[pi.take(ip, mode="clip")]
        pr, m = self.paddle_row, self._meet(r0, c0, pc)
        if m.any():  # the windows share pixels: both get the union's values
            k, (bh, bw), (ph, pw) = m.sum(), ball.shape[1:], paddle.shape[1:]
            games = [np.tile(a[m], 2) for a in (bx, by, px)]  # ball windows, then paddle windows
            corners = np.concatenate([r0[m], np.full(k, pr)]), np.concatenate([c0[m], pc[m]])
            both = self._union(*games, *corners, max(bh, ph), max(bw, pw))
            ball[m], paddle[m] = both[:k, :bh, :bw], both[k:, :ph, :pw]
        return [(r0, c0, ball), (pr, pc, paddle)]

    def _union(self, bx: A, by: A, px: A, r0: A, c0: A, nh: int, nw: int) -> np.ndarray:
        """Grey levels ``[M, nh, nw]`` over windows: ball + paddle - their intersection."""
        p, b = self.params, self.params.ball_size
        py, ph, pw = np.full_like(by, p.paddle_y), p.paddle_height, p.paddle_width
        bx1, by1, px1, py1 = bx + b, by + b, px + pw, py + ph
        y0, y1 = np.array([by, py, np.maximum(by, py)]), np.array([by1, py1, np.minimum(by1, py1)])
        x0, x1 = np.array([bx, px, np.maximum(bx, px)]), np.array([bx1, px1, np.minimum(bx1, px1)])
        rows, cols = _coverage(y0, y1, r0, nh, self.sy), _coverage(x0, x1, c0, nw, self.sx)
        cov = rows[..., None] * cols[..., None, :]
        return _levels(cov[0] + cov[1] - cov[2])

    def window_index(self, row0: A, col0: A, h: int, w: int, first: A) -> A:
        """Flat pixel indices ``[M, h, w]`` of windows in frames starting at pixels ``first``."""
        offsets = np.arange(h)[:, None] * self.size + np.arange(w)
        return (first + row0 * self.size + col0)[:, None, None] + offsets


_WORDS = {k: np.dtype(f"<u{k}") for k in (2, 4, 8)}  # a pixel's K frames as one word


def _drop_oldest(stacks: np.ndarray) -> None:
    """Drop the oldest frame in place: of ``stacks [..., K]`` (uint8) or of their words."""
    if stacks.itemsize == 1 and stacks.shape[-1] in _WORDS:
        stacks = stacks.view(_WORDS[stacks.shape[-1]])
    if stacks.itemsize > 1:  # words: the oldest frame is the lowest byte
        stacks >>= 8
    else:
        stacks[..., :-1] = stacks[..., 1:]
        stacks[..., -1] = 0


class FrameStack:
    """The last K frames of N games: uint8 :attr:`frames` ``[N, size, size, K]``, oldest first.

    A push shifts the frames one older and draws the new windows on top: one game's
    whole stack, by slices; N games' paddle rows and a box around their stacked ball
    windows, whose corners are kept as a ring (:attr:`corners` ``[2, K, N]``).
    """

    def __init__(self, renderer: FrameRenderer, num: int, depth: int) -> None:
        s, self.renderer, self.depth = renderer.size, renderer, depth
        self.frames = np.zeros((num, s, s, self.depth), dtype=np.uint8)
        self.corners = np.zeros((2, self.depth, num), dtype=np.int64)  # [rows, cols]
        self.pos = 0  # the ring slot of the oldest frame
        self.first = np.arange(num) * (s * s)  # each game's first pixel in the flat frames

    def _box(self) -> np.ndarray:
        """Flat pixel indices ``[N, h, w]``: a box around each game's stacked ball windows."""
        r = self.renderer
        lo = self.corners.min(axis=1)  # [2, N]: top rows, left columns
        h, w = (self.corners.max(axis=1) - lo).max(axis=1).tolist()  # the largest spreads
        h, w = min(h + r.ball_h, r.size), min(w + r.ball_w, r.size)
        lo = np.minimum(lo, [[r.size - h], [r.size - w]])
        return r.window_index(lo[0], lo[1], h, w, self.first)

    def _draw(self, first: A, bx: A, by: A, px: A, every: bool) -> tuple[N, N]:
        """Draw states' (``[M]``) windows on top (or ``every`` frame) at ``first``; ball corners."""
        r, slot, one = self.renderer, slice(None) if every else -1, len(self.frames) == 1
        windows = r.patch(bx.item(), by.item(), px.item()) if one else r.patches(bx, by, px)
        for row0, col0, levels in windows:
            values = levels[..., None] if every else levels
            if one:  # by slices
                h, w = levels.shape
                self.frames[0, row0 : row0 + h, col0 : col0 + w, slot] = values
            else:
                index = r.window_index(row0, col0, *levels.shape[1:], first)
                self.frames.reshape(-1, self.depth)[:, slot][index] = values
        return windows[0][0], windows[0][1]

    def reset(self, games: A, bx: A, by: A, px: A) -> A:
        """Start the stacks of ``games`` (int ``[M]``) with the frames of these states ``[M]``."""
        self.frames[games] = 0
        corner = self._draw(self.first[games], bx, by, px, every=True)
        self.corners[:, :, games] = np.reshape(corner, (2, 1, -1))
        return self.frames

    def push(self, bx: A, by: A, px: A) -> A:
        """Drop every game's oldest frame and add the frame of its state (``[N]`` each) on top."""
        r = self.renderer
        if len(self.frames) == 1:  # one game: shifting its whole stack costs less than its box
            _drop_oldest(self.frames)
            self._draw(self.first, bx, by, px, every=False)
            return self.frames
        frames, k, box = self.frames, self.depth, self._box()
        # Pixels, flat: a word each for K = 2, 4, 8 (the oldest frame its lowest byte).
        cells = frames.view(_WORDS[k]).reshape(-1) if k in _WORDS else frames.reshape(-1, k)
        old = cells[box]  # taken before the paddle rows shift: no pixel shifts twice
        _drop_oldest(self.frames[:, r.paddle_row : r.paddle_row + r.paddle_h])
        _drop_oldest(old)
        cells[box] = old
        self.corners[:, self.pos] = self._draw(self.first, bx, by, px, every=False)
        self.pos = (self.pos + 1) % self.depth
        return self.frames
