"""Draw game states: small grey frames for learning, full-size screens for people.

:class:`FrameRenderer` rasterises states straight into ``size x size`` uint8
frames without drawing the ``width x height`` screen first. A pixel's value is
``round(255 * covered fraction)`` of its block of the world, which is exactly
what an area-averaging downscale of the full 0/255 screen gives. The covered
fraction of the union of ball and paddle is
``cov(ball) + cov(paddle) - cov(ball ∩ paddle)``, and each term is separable
(an x-coverage times a y-coverage), so only two small windows per frame are
computed: one around the ball, one around the paddle.

:class:`FrameStack` (one game) and :class:`BatchFrameStack` (N games) keep the
last K frames of a game and update them in place, bit for bit what
re-rendering and shifting the whole stack gives, at a fraction of the cost:
they draw from per-position pieces (:class:`FramePieces`) and touch only the
pixels that were or become non-zero.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from catchrl.envs.core import CatchParams, CatchState

__all__ = [
    "BatchFrameStack",
    "FramePieces",
    "FrameRenderer",
    "FrameStack",
    "area_downscale",
    "render_screen",
    "stack_word",
]


def render_screen(params: CatchParams, state: CatchState) -> np.ndarray:
    """The full ``[height, width]`` uint8 screen: 255 on the ball and paddle, 0 elsewhere."""
    screen = np.zeros((params.height, params.width), dtype=np.uint8)
    b, p = params.ball_size, params
    screen[max(state.ball_y, 0) : state.ball_y + b, max(state.ball_x, 0) : state.ball_x + b] = 255
    screen[
        p.paddle_y : p.paddle_y + p.paddle_height, state.paddle_x : state.paddle_x + p.paddle_width
    ] = 255
    return screen


def _grey(cov: np.ndarray) -> np.ndarray:
    """Covered fractions to grey levels ``round(255 * cov)``, half-way ties to even.

    The fractions come from sums of float products, so a value that is exactly
    a half level (e.g. 127.5) may land a hair off it; rounding to 6 decimals
    first makes ties land on the tie, as the exact area average does.
    """
    return np.rint(np.round(cov * 255.0, 6)).astype(np.uint8)


def area_downscale(screen: np.ndarray, size: int) -> np.ndarray:
    """Area-average a ``[H, W]`` screen to ``[size, size]`` (H and W multiples of size), rounded."""
    h, w = screen.shape
    if h % size or w % size:
        raise ValueError(f"screen {h}x{w} is not a whole multiple of {size}")
    blocks = screen.reshape(size, h // size, size, w // size).astype(np.float64)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


class FrameRenderer:
    """Rasterise N states at once into ``[N, size, size]`` uint8 frames.

    Args:
        params: The game's geometry.
        size: Side of the square frame in pixels (book: 80).

    """

    def __init__(self, params: CatchParams, size: int = 80) -> None:
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"frame size must be a positive int, got {size!r}")
        self.params, self.size = params, int(size)
        self.sx, self.sy = params.width / size, params.height / size
        # Window sizes: enough pixels to hold any placement of the rectangle.
        self.ball_w = min(size, math.ceil(params.ball_size / self.sx) + 1)
        self.ball_h = min(size, math.ceil(params.ball_size / self.sy) + 1)
        self.paddle_w = min(size, math.ceil(params.paddle_width / self.sx) + 1)
        self.paddle_h = min(size, math.ceil(params.paddle_height / self.sy) + 1)
        self._pieces: FramePieces | None = None

    def pieces(self) -> FramePieces:
        """The :class:`FramePieces` of this renderer's game and size (shared, built once)."""
        if self._pieces is None:
            self._pieces = _shared_pieces(self.params, self.size)
        return self._pieces

    def _window(self, lo: np.ndarray, extent: int, scale: float, n: int) -> np.ndarray:
        """First pixel of an n-pixel window that holds ``[lo, lo + extent)``, inside the frame."""
        start = np.floor(lo / scale).astype(np.int64)
        return np.clip(start, 0, self.size - n)

    @staticmethod
    def _cov(lo: np.ndarray, hi: np.ndarray, start: np.ndarray, n: int, scale: float) -> np.ndarray:
        """Covered fraction of pixels ``start .. start+n-1`` by ``[lo, hi)``: ``[N, n]``."""
        edge = (start[:, None] + np.arange(n)) * scale  # [N, n] left edges
        lo, hi = lo[:, None], hi[:, None]
        return np.clip(np.minimum(hi, edge + scale) - np.maximum(lo, edge), 0.0, scale) / scale

    def _values(
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
            self._cov(by, by + b, r0, nh, sy)[:, :, None]
            * self._cov(bx, bx + b, c0, nw, sx)[:, None, :]
        )
        cov += (
            self._cov(py, py + p.paddle_height, r0, nh, sy)[:, :, None]
            * self._cov(px, px + p.paddle_width, c0, nw, sx)[:, None, :]
        )
        cov -= (
            self._cov(iy0, iy1, r0, nh, sy)[:, :, None]
            * self._cov(ix0, ix1, c0, nw, sx)[:, None, :]
        )
        return _grey(cov)

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
        for x, y, nw, nh, ew, eh in (
            (bx, by, self.ball_w, self.ball_h, p.ball_size, p.ball_size),
            (px, py, self.paddle_w, self.paddle_h, p.paddle_width, p.paddle_height),
        ):
            c0 = self._window(x, ew, self.sx, nw)
            r0 = self._window(y, eh, self.sy, nh)
            out.append((r0, c0, self._values(bx, by, px, c0, r0, nw, nh)))
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


# --- incremental frame stacks ----------------------------------------------


@functools.lru_cache(maxsize=16)
def _shared_pieces(params: CatchParams, size: int) -> FramePieces:
    """One :class:`FramePieces` per game and frame size, shared by all envs that draw it."""
    return FramePieces(FrameRenderer(params, size))


_STACK_WORDS = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}


def stack_word(depth: int) -> np.dtype | None:
    """The unsigned integer type that holds one pixel of a ``depth``-frame stack, if any.

    Seen through it, a ``[..., size, size, depth]`` uint8 stack is one word per
    pixel whose lowest byte is the oldest frame (little-endian): ``word >> 8``
    drops the oldest frame and moves the others one place down, and
    ``word | v << 8 * (depth - 1)`` puts a new frame on top. Exists for depths
    1, 2, 4 and 8; ``None`` otherwise.
    """
    return _STACK_WORDS.get(int(depth))


def _umax(a: np.ndarray) -> int:
    """Largest value of an int array seen as unsigned (negative values count as huge)."""
    a = a if a.dtype == np.int64 else np.asarray(a, dtype=np.int64)
    return int(a.view(np.uint64).max()) if a.size else 0


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

    _TABLE_MAX_BYTES = 64 << 20  # larger patch tables are not kept: patches are computed

    def __init__(self, renderer: FrameRenderer) -> None:
        r, p, s = renderer, renderer.params, renderer.size
        self.renderer, self.size = r, s
        self.ball_h, self.ball_w = r.ball_h, r.ball_w
        ys = np.arange(p.height + 1, dtype=np.float64)
        xs = np.arange(p.width + 1, dtype=np.float64)
        self.ball_row0 = r._window(ys, p.ball_size, r.sy, r.ball_h)
        self.ball_col0 = r._window(xs, p.ball_size, r.sx, r.ball_w)
        self.ball_fy = r._cov(ys, ys + p.ball_size, self.ball_row0, r.ball_h, r.sy)
        self.ball_fx = r._cov(xs, xs + p.ball_size, self.ball_col0, r.ball_w, r.sx)
        self.ball_fr0, self.ball_fr1 = _touched(self.ball_row0, self.ball_fy, s)
        self.ball_fc0, self.ball_fc1 = _touched(self.ball_col0, self.ball_fx, s)

        py = np.array([float(p.paddle_y)])
        row0 = r._window(py, p.paddle_height, r.sy, r.paddle_h)
        fy = r._cov(py, py + p.paddle_height, row0, r.paddle_h, r.sy)  # [1, paddle_h]
        self.paddle_row0, self.paddle_h, self.paddle_w = int(row0[0]), r.paddle_h, r.paddle_w
        fr0, fr1 = _touched(row0, fy, s)
        self.paddle_fr0, self.paddle_fr1 = int(fr0[0]), int(fr1[0])
        self.band_row0, self.band_h = self.paddle_fr0, self.paddle_fr1 - self.paddle_fr0
        fy = fy[:, self.band_row0 - self.paddle_row0 : self.paddle_fr1 - self.paddle_row0]
        pxs = np.arange(p.paddle_max_x + 1, dtype=np.float64)
        self.paddle_col0 = r._window(pxs, p.paddle_width, r.sx, r.paddle_w)
        fx = r._cov(pxs, pxs + p.paddle_width, self.paddle_col0, r.paddle_w, r.sx)
        self.paddle_fc0, self.paddle_fc1 = _touched(self.paddle_col0, fx, s)
        values = _grey(fy[:, :, None] * fx[:, None, :])
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
        fits = math.prod(shape) <= self._TABLE_MAX_BYTES
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
            return _grey(cov).reshape(len(cov), -1)
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
        row = _grey(cov).reshape(len(cov), -1)
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
        values = r._values(as_f(ball_x), as_f(ball_y), as_f(paddle_x), col0, row0, w, h)
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


class FrameStack:
    """The last ``depth`` frames of one game: uint8 ``(size, size, depth)``, oldest first.

    ``reset`` fills the stack with one frame, ``push`` drops the oldest frame
    and adds a new one; both return :attr:`frames` itself (copy it to keep it).
    The result is bit for bit ``FrameRenderer.render_state`` stacked, but a
    pixel is non-zero only where the ball or the paddle was in one of the
    stacked frames, so only the rows from the oldest ball window down to the
    paddle's band are shifted, and the new frame is two small patches: for
    depths 1, 2, 4 and 8 through one word per pixel (:func:`stack_word`),
    ``>>= 8`` and ``|= patch << 8 * (depth - 1)``, with each position's patch
    computed once. Other depths re-render the frame and shift the whole stack.

    Args:
        renderer: Draws the frames.
        depth: Frames in the stack (book: 4).

    """

    _JOINT_CACHE_MAX = 1 << 16

    def __init__(self, renderer: FrameRenderer, depth: int) -> None:
        s = renderer.size
        self.renderer, self.depth = renderer, int(depth)
        self.frames = np.zeros((s, s, self.depth), dtype=np.uint8)
        word = stack_word(self.depth)
        self._fast = word is not None
        if word is None:
            return
        pc = self._pieces = renderer.pieces()
        self._word = word
        self._words = self.frames.view(word)[:, :, 0]  # [size, size]
        self._top = 8 * (self.depth - 1)
        self._rep = word.type(sum(1 << (8 * k) for k in range(self.depth)))  # byte in every slot
        self._b0, self._b1 = pc.band_row0, pc.band_row0 + pc.band_h
        self._band = self._words[self._b0 : self._b1]
        self._band_top = list(pc.band.astype(word) << self._top)  # by paddle x
        self._patch_rows: list[list[np.ndarray] | None] = [None] * len(pc.ball_row0)  # by ball y
        self._row0, self._col0 = pc.ball_row0.tolist(), pc.ball_col0.tolist()
        self._fc0, self._fc1 = pc.ball_fc0.tolist(), pc.ball_fc1.tolist()
        self._meets = pc.ball_meets_band.tolist()
        self._bh, self._bw, self._size = pc.ball_h, pc.ball_w, s
        self._flat = self._words.reshape(-1)
        self._span = (pc.ball_h - 1) * s + pc.ball_w
        self._span_cols = (np.arange(pc.ball_h)[:, None] * s + np.arange(pc.ball_w)).ravel()
        self._gap = max(1, 2048 // s)  # rows between ball and band worth a second call
        self._xm, self._ym, self._pm = len(self._col0) - 1, len(self._row0) - 1, len(pc.band) - 1
        self._joints: dict[tuple[int, int, int], tuple[int, int, np.ndarray]] = {}
        self._paddle_fc0, self._paddle_fc1 = pc.paddle_fc0.tolist(), pc.paddle_fc1.tolist()
        self._hist = [0] * self.depth  # first rows of the stacked frames' ball windows, a ring
        self._band_key: tuple[int, ...] = (0,) * self.depth  # paddle x of the stacked frames
        self._clean = 0  # how many of the newest frames have no ball pixel in the band
        self._bands: dict[tuple[int, ...], np.ndarray] = {}  # band words by _band_key
        self._pos = 0  # the ring slot of the oldest frame
        self._whole = 0  # pushes left that must shift the whole stack (after an odd position)

    def reset(self, ball_x: int, ball_y: int, paddle_x: int) -> np.ndarray:
        """Fill every slot with the frame of this state; returns :attr:`frames`."""
        if not self._fast:
            self.frames[:] = self._render(ball_x, ball_y, paddle_x)[:, :, None]
            return self.frames
        words, rep = self._words, self._rep
        if not self._pieces.in_range(ball_x, ball_y, paddle_x):
            words[:] = self._render(ball_x, ball_y, paddle_x).astype(self._word) * rep
            self._whole = self.depth
            self._band_key, self._clean = (paddle_x,) * self.depth, 0
            return self.frames
        self._whole = 0
        words.fill(0)
        self._band[:] = self._pieces.band[paddle_x].astype(self._word) * rep
        r0, c0 = self._row0[ball_y], self._col0[ball_x]
        values = self._pieces.ball_patches(np.array([ball_x]), np.array([ball_y]))[0]
        window = words[r0 : r0 + self._bh, c0 : c0 + self._bw]
        window |= values.reshape(self._bh, self._bw).astype(self._word) * rep
        if self._shares(ball_x, ball_y, paddle_x):
            jr, jc, values = self._joint(ball_x, ball_y, paddle_x)
            joint = values.astype(self._word) * rep
            words[jr : jr + values.shape[0], jc : jc + values.shape[1]] = joint
        self._hist[:] = [r0] * self.depth
        self._pos = 0
        self._band_key = (paddle_x,) * self.depth
        clean = r0 + self._bh <= self._b0 or r0 >= self._b1
        self._clean = self.depth if clean else 0
        return self.frames

    def push(self, ball_x: int, ball_y: int, paddle_x: int) -> np.ndarray:
        """Drop the oldest frame, add this state's on top; returns :attr:`frames`."""
        if not self._fast:
            frames = self.frames
            frames[:, :, :-1] = frames[:, :, 1:]
            frames[:, :, -1] = self._render(ball_x, ball_y, paddle_x)
            return frames
        if not (0 <= ball_x <= self._xm and 0 <= ball_y <= self._ym and 0 <= paddle_x <= self._pm):
            return self._push_outside(ball_x, ball_y, paddle_x)
        words, band, hist = self._words, self._band, self._hist
        r0 = self._row0[ball_y]
        key = self._band_key = (*self._band_key[1:], paddle_x)
        if r0 + self._bh <= self._b0 or r0 >= self._b1:  # no ball pixel in the band's rows
            clean = self._clean = self._clean + 1
        else:
            clean = self._clean = 0
        if self._whole:
            self._whole -= 1
            np.right_shift(words, 8, out=words)
            np.bitwise_or(band, self._band_top[paddle_x], out=band)
        elif clean >= self.depth:  # the band holds paddles only: look the whole band up
            old = words[min(hist) : max(hist) + self._bh]
            np.right_shift(old, 8, out=old)
            cached = self._bands.get(key)
            band[:] = cached if cached is not None else self._band_of(key)
        else:  # full rows (contiguous: cheap calls) from the old ball windows and the band
            lo, hi, b0, b1 = min(hist), max(hist) + self._bh, self._b0, self._b1
            if hi + self._gap <= b0 or lo >= b1 + self._gap:
                old = words[lo:hi]
                np.right_shift(old, 8, out=old)
                np.right_shift(band, 8, out=band)
            else:
                old = words[min(lo, b0) : max(hi, b1)]
                np.right_shift(old, 8, out=old)
            np.bitwise_or(band, self._band_top[paddle_x], out=band)
        row = self._patch_rows[ball_y]
        patch = row[ball_x] if row is not None else self._patch(ball_x, ball_y)
        c0 = self._col0[ball_x]
        if patch.ndim == 1:  # the window's rows as one contiguous run of the frame
            start = r0 * self._size + c0
            window = self._flat[start : start + self._span]
        else:
            window = words[r0 : r0 + self._bh, c0 : c0 + self._bw]
        np.bitwise_or(window, patch, out=window)
        if self._meets[ball_y] and self._shares(ball_x, ball_y, paddle_x):
            jr, jc, values = self._joint(ball_x, ball_y, paddle_x)
            self.frames[jr : jr + values.shape[0], jc : jc + values.shape[1], -1] = values
        pos = self._pos
        hist[pos] = r0
        self._pos = pos + 1 if pos + 1 < self.depth else 0
        return self.frames

    def _push_outside(self, ball_x: int, ball_y: int, paddle_x: int) -> np.ndarray:
        """Push a position the tables do not cover (only a hand-set state can be one)."""
        words = self._words
        np.right_shift(words, 8, out=words)
        words |= self._render(ball_x, ball_y, paddle_x).astype(self._word) << self._top
        self._whole = self.depth  # until it leaves the stack, shift whole stacks
        self._band_key = (*self._band_key[1:], paddle_x)
        self._clean = 0
        self._hist[self._pos] = 0
        self._pos = (self._pos + 1) % self.depth
        return self.frames

    def _render(self, ball_x: int, ball_y: int, paddle_x: int) -> np.ndarray:
        return self.renderer.render(np.array([ball_x]), np.array([ball_y]), np.array([paddle_x]))[0]

    _MAX_SPANS = 64  # distinct patches per ball y kept as runs; more: 2-d windows

    def _patch(self, ball_x: int, ball_y: int) -> np.ndarray:
        """The ball's window values as words in the top byte, for ``push``.

        Usually a run of ``(ball_h - 1) * size + ball_w`` words: the window's
        rows with the frame's row stride, zero in between, so that one call on
        a contiguous slice draws it. Balls at one y share the few distinct
        patches (one per sub-pixel offset); with many, plain 2-d windows.
        """
        row = self._patch_rows[ball_y]
        if row is None:
            values = self._pieces.ball_patch_row(ball_y)  # [X, ball_h * ball_w]
            distinct, which = np.unique(values, axis=0, return_inverse=True)
            words = distinct.astype(self._word) << self._top
            if len(distinct) <= self._MAX_SPANS:
                spans = np.zeros((len(distinct), self._span), dtype=self._word)
                spans[:, self._span_cols] = words
                row = [spans[i] for i in which.ravel()]
            else:
                row = list(words.reshape(-1, self._bh, self._bw)[which.ravel()])
            self._patch_rows[ball_y] = row
        return row[ball_x]

    _MAX_BANDS = 1 << 12

    def _band_of(self, key: tuple[int, ...]) -> np.ndarray:
        """The band's words when the stacked frames' paddles are at ``key`` (oldest first)."""
        band = np.zeros(self._band.shape, dtype=self._word)
        for k, paddle_x in enumerate(key):
            band |= self._pieces.band[paddle_x].astype(self._word) << (8 * k)
        if len(self._bands) < self._MAX_BANDS:
            self._bands[key] = band
        return band

    def _shares(self, ball_x: int, ball_y: int, paddle_x: int) -> bool:
        return bool(
            self._meets[ball_y]
            and self._fc0[ball_x] < self._paddle_fc1[paddle_x]
            and self._paddle_fc0[paddle_x] < self._fc1[ball_x]
        )

    def _joint(self, ball_x: int, ball_y: int, paddle_x: int) -> tuple[int, int, np.ndarray]:
        key = (ball_x, ball_y, paddle_x)
        entry = self._joints.get(key)
        if entry is None:
            r0, c0, values = self._pieces.joint(
                np.array([ball_x]), np.array([ball_y]), np.array([paddle_x])
            )
            entry = (int(r0[0]), int(c0[0]), values[0])
            if len(self._joints) < self._JOINT_CACHE_MAX:
                self._joints[key] = entry
        return entry


class BatchFrameStack:
    """The frame stacks of N games: uint8 ``(N, size, size, depth)``, as N :class:`FrameStack`.

    :meth:`push` works on all games at once: it shifts the paddle's band (a
    plain slice of every stack) and, by one gather and one scatter over all
    games, the pixels of the ball windows of the frames in each stack, with
    the new ball patch added on the way; then it adds the new band on top.
    The gather takes one box per game that holds all its stacked ball windows
    and the new one when such boxes are small (a ball falling without a
    respawn in the stack), else each window (duplicates are harmless: every
    copy of a pixel gets the same value). :meth:`reset` starts the stacks of
    some games afresh. :attr:`frames` is updated in place and returned.

    Args:
        renderer: Draws the frames.
        num: Number of games N.
        depth: Frames per stack (book: 4).

    """

    def __init__(self, renderer: FrameRenderer, num: int, depth: int) -> None:
        s = renderer.size
        self.renderer, self.num, self.depth = renderer, int(num), int(depth)
        self.frames = np.zeros((self.num, s, s, self.depth), dtype=np.uint8)
        word = stack_word(self.depth)
        self._fast = word is not None
        if word is None:
            return
        pc = self._pieces = renderer.pieces()
        self._size, self._word, self._top = s, word, 8 * (self.depth - 1)
        self._rep = word.type(sum(1 << (8 * k) for k in range(self.depth)))
        self._words = self.frames.view(word)[..., 0]  # [N, size, size]
        self._flat = self._words.reshape(-1)  # a view: the words are contiguous
        self._bytes = self.frames.reshape(-1)
        self._b0, self._b1 = pc.band_row0, pc.band_row0 + pc.band_h
        self._band = self._words[:, self._b0 : self._b1]  # [N, band_h, size]
        self._band_top = pc.band.astype(word) << self._top  # [PX, band_h, size]
        self._band_rep = pc.band.astype(word) * self._rep
        self._bh, self._bw = pc.ball_h, pc.ball_w
        self._tmpl = self._offsets(pc.ball_h, pc.ball_w, s)  # [hw]: a ball window in a frame
        self._base = np.arange(self.num, dtype=np.int64) * s * s
        self._limits = (len(pc.ball_col0) - 1, len(pc.ball_row0) - 1, len(pc.band) - 1)
        # first row and column of each stacked frame's ball window: rings over the first axis
        self._hist_r = np.zeros((self.depth, self.num), dtype=np.int64)
        self._hist_c = np.zeros((self.depth, self.num), dtype=np.int64)
        self._pos = 0  # the ring slot of the oldest frame
        self._whole = 0  # pushes left that must shift whole stacks (after an odd position)
        self._boxes: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        # ball patches as words in the top byte, by (y, x); rows filled as balls reach them
        shape = (len(pc.ball_row0), len(pc.ball_col0), len(self._tmpl))
        fits = math.prod(shape) * word.itemsize <= pc._TABLE_MAX_BYTES
        self._patch_table = np.zeros(shape, dtype=word) if fits else None
        self._patch_rows_done = np.zeros(shape[0], dtype=bool)

    @staticmethod
    def _offsets(h: int, w: int, stride: int) -> np.ndarray:
        return (np.arange(h)[:, None] * stride + np.arange(w)).ravel()

    def reset(
        self, idx: np.ndarray, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray
    ) -> np.ndarray:
        """Fill every slot of the games ``idx`` with the frame of their state (``[len(idx)]``)."""
        if not self._fast:
            self.frames[idx] = self.renderer.render(ball_x, ball_y, paddle_x)[..., None]
            return self.frames
        if self._whole or not self._in_range(ball_x, ball_y, paddle_x):
            frames = self.renderer.render(ball_x, ball_y, paddle_x).astype(self._word)
            self._words[idx] = frames * self._rep
            self._hist_r[:, idx] = self._hist_c[:, idx] = 0
            self._whole = self.depth
            return self.frames
        pc, flat, base = self._pieces, self._flat, self._base[idx]
        # what the old stacks hold outside the band, then the band, then the ball
        flat[self._windows(base, self._hist_r[:, idx], self._hist_c[:, idx])] = 0
        self._words[idx, self._b0 : self._b1] = self._band_rep[paddle_x]
        rows, cols = pc.ball_row0[ball_y], pc.ball_col0[ball_x]
        windows = self._windows(base, rows, cols)
        patches = (self._patches(ball_x, ball_y) >> self._top) * self._rep
        patches |= flat[windows]
        flat[windows] = patches
        self._hist_r[:, idx], self._hist_c[:, idx] = rows, cols
        self._joint(idx, ball_x, ball_y, paddle_x, fresh=True)
        return self.frames

    def push(self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray) -> np.ndarray:
        """Drop every game's oldest frame and add the frame of its state (``[N]``) on top."""
        if not self._fast:
            frames = self.frames
            new = self.renderer.render(ball_x, ball_y, paddle_x)
            frames[..., :-1] = frames[..., 1:]
            frames[..., -1] = new
            return frames
        if not self._in_range(ball_x, ball_y, paddle_x):
            return self._push_outside(ball_x, ball_y, paddle_x)
        pc, flat, band, base = self._pieces, self._flat, self._band, self._base
        hr, hc = self._hist_r, self._hist_c
        rows, cols = pc.ball_row0[ball_y], pc.ball_col0[ball_x]
        patches = self._patches(ball_x, ball_y)
        box = None if self._whole else self._box(rows, cols)
        if box is not None:
            index, at = box
            stacked = flat[index]  # gathered before the band shifts: no pixel shifts twice
            np.right_shift(band, 8, out=band)
            np.right_shift(stacked, 8, out=stacked)
            gathered = stacked.reshape(-1)  # a view
            gathered[at] |= patches
            flat[index] = stacked
            np.bitwise_or(band, self._band_top[paddle_x], out=band)
        else:
            if self._whole:
                self._whole -= 1
                np.right_shift(self._words, 8, out=self._words)
            else:
                old = self._windows(base, hr, hc).reshape(self.depth, -1)
                stacked = flat[old]  # gathered before the band shifts, as above
                np.right_shift(band, 8, out=band)
                np.right_shift(stacked, 8, out=stacked)
                flat[old] = stacked
            np.bitwise_or(band, self._band_top[paddle_x], out=band)
            windows = self._windows(base, rows, cols)
            patches |= flat[windows]
            flat[windows] = patches
        pos = self._pos
        hr[pos], hc[pos] = rows, cols
        self._pos = (pos + 1) % self.depth
        self._joint(None, ball_x, ball_y, paddle_x, fresh=False)
        return self.frames

    def _push_outside(
        self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray
    ) -> np.ndarray:
        """Push positions the tables do not cover (only hand-set states can be such)."""
        np.right_shift(self._words, 8, out=self._words)
        new = self.renderer.render(ball_x, ball_y, paddle_x).astype(self._word)
        self._words |= new << self._top
        self._hist_r[self._pos] = self._hist_c[self._pos] = 0
        self._pos = (self._pos + 1) % self.depth
        self._whole = self.depth  # until they leave the stacks, shift whole stacks
        return self.frames

    def _windows(self, base: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Word indices ``[..., hw]`` of ball windows starting at ``(rows, cols)``."""
        return (base + rows * self._size + cols)[..., None] + self._tmpl

    def _box(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """A box per game around its stacked ball windows and the new one, if small enough.

        Returns:
            ``(index [N, h * w], at [N, hw])``: the boxes' word indices in the
            frames, and where the new ball windows lie in the gathered boxes
            (flat); ``None`` where boxes would hold more pixels than windows.

        """
        hr, hc, s = self._hist_r, self._hist_c, self._size
        r_lo, r_hi = np.minimum(hr.min(axis=0), rows), np.maximum(hr.max(axis=0), rows)
        c_lo, c_hi = np.minimum(hc.min(axis=0), cols), np.maximum(hc.max(axis=0), cols)
        h = int((r_hi - r_lo).max()) + self._bh
        w = int((c_hi - c_lo).max()) + self._bw
        if h * w > (self.depth + 1) * len(self._tmpl):
            return None
        r_lo, c_lo = np.minimum(r_lo, s - h), np.minimum(c_lo, s - w)
        shape = self._boxes.get((h, w))
        if shape is None:
            shape = self._boxes[h, w] = (
                self._offsets(h, w, s),
                self._offsets(self._bh, self._bw, w),
            )
        frame_offsets, window_offsets = shape
        index = (self._base + r_lo * s + c_lo)[:, None] + frame_offsets
        first = np.arange(self.num, dtype=np.int64) * (h * w) + (rows - r_lo) * w + (cols - c_lo)
        return index, first[:, None] + window_offsets

    def _in_range(self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray) -> bool:
        """Whether the tables cover all positions (seen unsigned, negatives are huge)."""
        xm, ym, pm = self._limits
        return _umax(ball_x) <= xm and _umax(ball_y) <= ym and _umax(paddle_x) <= pm

    def _patches(self, ball_x: np.ndarray, ball_y: np.ndarray) -> np.ndarray:
        """Ball patches ``[M, hw]`` as new words, the values in the top byte."""
        table, pc = self._patch_table, self._pieces
        if table is None:
            return pc.ball_patches(ball_x, ball_y).astype(self._word) << self._top
        done = self._patch_rows_done
        if not done[ball_y].all():
            for y in np.unique(ball_y[~done[ball_y]]):
                table[y] = pc.ball_patch_row(int(y)).astype(self._word) << self._top
                done[y] = True
        return table[ball_y, ball_x]

    def _joint(
        self,
        idx: np.ndarray | None,
        ball_x: np.ndarray,
        ball_y: np.ndarray,
        paddle_x: np.ndarray,
        fresh: bool,
    ) -> None:
        """Write the renderer's own values where ball and paddle share pixels."""
        pc = self._pieces
        if not pc.ball_meets_band[ball_y].any():
            return
        j = np.flatnonzero(pc.shares_pixels(ball_x, ball_y, paddle_x))
        if not j.size:
            return
        row0, col0, values = pc.joint(ball_x[j], ball_y[j], paddle_x[j])
        s, (h, w) = self._size, values.shape[1:]
        games = j if idx is None else idx[j]
        pix = (self._base[games] + row0 * s + col0)[:, None, None] + self._offsets(h, w, s).reshape(
            h, w
        )
        if fresh:
            self._flat[pix] = values.astype(self._word) * self._rep
        else:
            self._bytes[pix * self.depth + (self.depth - 1)] = values
