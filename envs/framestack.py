"""One game's stack of the last K frames, updated in place (the single env's engine).

The plain definition of a frame stack is :func:`fill_stack` at the start of a
game and :func:`push_frame` on each step, with frames from
:class:`~catchrl.envs.raster.FrameRenderer`. :class:`FrameStack` returns bit
for bit the same stacks at a fraction of the cost (``tests/envs/test_render_perf_paths.py``
plays both side by side), and falls back to the plain definition for depths
without a stack word (:func:`stack_word`).
"""

from __future__ import annotations

import numpy as np

from catchrl.envs.frame_tables import TABLE_MAX_BYTES, shared_pieces
from catchrl.envs.limits import MAX_FRAME_STACK, check_int_range
from catchrl.envs.raster import FrameRenderer

__all__ = ["FrameStack", "check_frame_stack", "fill_stack", "push_frame", "stack_word"]

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


def check_frame_stack(depth: object) -> int:
    """``depth`` as an int in ``[1, MAX_FRAME_STACK]``, else a ``ValueError`` naming frame_stack."""
    return check_int_range("frame_stack", depth, 1, MAX_FRAME_STACK, "frames per observation")


def fill_stack(stack: np.ndarray, frame: np.ndarray) -> None:
    """Start stacks plainly: ``frame [..., size, size]`` in every slot of ``stack [..., depth]``."""
    stack[...] = frame[..., None]


def push_frame(stack: np.ndarray, frame: np.ndarray) -> None:
    """Push plainly: drop the oldest (first) slot, move the others down, ``frame`` on top."""
    stack[..., :-1] = stack[..., 1:]
    stack[..., -1] = frame


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
    _CACHE_MAX_BYTES = TABLE_MAX_BYTES  # per cache (patch rows, bands, joint windows)

    def __init__(self, renderer: FrameRenderer, depth: int) -> None:
        s = renderer.size
        self.renderer, self.depth = renderer, int(depth)
        self.frames = np.zeros((s, s, self.depth), dtype=np.uint8)
        word = stack_word(self.depth)
        self._fast = word is not None
        if word is None:
            return
        pc = self._pieces = shared_pieces(renderer.params, renderer.size)
        self._word = word
        self._top = 8 * (self.depth - 1)
        self._rep = word.type(sum(1 << (8 * k) for k in range(self.depth)))  # byte in every slot
        self._b0, self._b1 = pc.band_row0, pc.band_row0 + pc.band_h
        self._bind(self.frames)
        self._band_top = list(pc.band.astype(word) << self._top)  # by paddle x
        self._patch_rows: list[list[np.ndarray] | None] = [None] * len(pc.ball_row0)  # by ball y
        self._row0, self._col0 = pc.ball_row0.tolist(), pc.ball_col0.tolist()
        self._fc0, self._fc1 = pc.ball_fc0.tolist(), pc.ball_fc1.tolist()
        self._meets = pc.ball_meets_band.tolist()
        self._bh, self._bw, self._size = pc.ball_h, pc.ball_w, s
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
        band_bytes = max(1, self._band.nbytes)
        self._max_bands = max(1, min(self._MAX_BANDS, self._CACHE_MAX_BYTES // band_bytes))
        self._patch_bytes = self._joint_bytes = 0  # bytes held by those caches
        self._pos = 0  # the ring slot of the oldest frame
        self._whole = 0  # pushes left that must shift the whole stack (after an odd position)

    _RING = ("_hist", "_band_key", "_clean", "_pos", "_whole")  # what pushes change, besides frames

    def _bind(self, frames: np.ndarray) -> None:
        """Make ``frames`` the stack, with the word views the fast path writes through."""
        self.frames = frames
        if self._fast:
            self._words = frames.view(self._word)[:, :, 0]  # [size, size]
            self._band = self._words[self._b0 : self._b1]
            self._flat = self._words.reshape(-1)  # a view: the words are contiguous

    def __getstate__(self) -> dict[str, object]:
        """For ``copy.deepcopy`` and ``pickle``: the frames and the ring, not the views.

        A copied view would be a new array of its own, no longer the frames
        (the copy's observations would stay frozen); caches are rebuilt.
        """
        state: dict[str, object] = {
            "renderer": self.renderer,
            "depth": self.depth,
            "frames": self.frames,
        }
        if self._fast:
            state.update({name: getattr(self, name) for name in self._RING})
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        """Rebuild from :meth:`__getstate__`: the views over the (copied) frames."""
        self.__init__(state["renderer"], state["depth"])  # type: ignore[misc]
        self._bind(state["frames"])  # type: ignore[arg-type]
        if self._fast:
            for name in self._RING:
                setattr(self, name, state[name])

    def reset(self, ball_x: int, ball_y: int, paddle_x: int) -> np.ndarray:
        """Fill every slot with the frame of this state; returns :attr:`frames`."""
        if not self._fast:
            fill_stack(self.frames, self._render(ball_x, ball_y, paddle_x))
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
            push_frame(self.frames, self._render(ball_x, ball_y, paddle_x))
            return self.frames
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
        if row is None and self._patch_bytes >= self._CACHE_MAX_BYTES:  # full: this one alone
            values = self._pieces.ball_patches(np.array([ball_x]), np.array([ball_y]))[0]
            return values.reshape(self._bh, self._bw).astype(self._word) << self._top
        if row is None:
            values = self._pieces.ball_patch_row(ball_y)  # [X, ball_h * ball_w]
            distinct, which = np.unique(values, axis=0, return_inverse=True)
            words = distinct.astype(self._word) << self._top
            if len(distinct) <= self._MAX_SPANS:
                spans = np.zeros((len(distinct), self._span), dtype=self._word)
                spans[:, self._span_cols] = words
                row = [spans[i] for i in which.ravel()]
                self._patch_bytes += spans.nbytes
            else:
                windows = words.reshape(-1, self._bh, self._bw)[which.ravel()]
                row = list(windows)
                self._patch_bytes += windows.nbytes
            self._patch_rows[ball_y] = row
        return row[ball_x]

    _MAX_BANDS = 1 << 12

    def _band_of(self, key: tuple[int, ...]) -> np.ndarray:
        """The band's words when the stacked frames' paddles are at ``key`` (oldest first)."""
        band = np.zeros(self._band.shape, dtype=self._word)
        for k, paddle_x in enumerate(key):
            band |= self._pieces.band[paddle_x].astype(self._word) << (8 * k)
        if len(self._bands) < self._max_bands:
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
            fits = self._joint_bytes < self._CACHE_MAX_BYTES
            if fits and len(self._joints) < self._JOINT_CACHE_MAX:
                self._joints[key] = entry
                self._joint_bytes += entry[2].nbytes
        return entry
