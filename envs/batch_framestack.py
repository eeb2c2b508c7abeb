"""N games' frame stacks in one array, updated in place (the vector env's engine).

:class:`BatchFrameStack` returns bit for bit N plain stacks
(:func:`~catchrl.envs.framestack.fill_stack` / :func:`~catchrl.envs.framestack.push_frame`
over :class:`~catchrl.envs.raster.FrameRenderer` frames), which it falls back
to for depths without a stack word; ``tests/envs/test_render_perf_paths.py``
plays both side by side.
"""

from __future__ import annotations

import math

import numpy as np

from catchrl.envs.frame_tables import TABLE_MAX_BYTES, shared_pieces
from catchrl.envs.framestack import push_frame, stack_word
from catchrl.envs.raster import FrameRenderer

__all__ = ["BatchFrameStack"]


def _umax(a: np.ndarray) -> int:
    """Largest value of an int array seen as unsigned (negative values count as huge)."""
    a = a if a.dtype == np.int64 else np.asarray(a, dtype=np.int64)
    return int(a.view(np.uint64).max()) if a.size else 0


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
        pc = self._pieces = shared_pieces(renderer.params, renderer.size)
        self._size, self._word, self._top = s, word, 8 * (self.depth - 1)
        self._rep = word.type(sum(1 << (8 * k) for k in range(self.depth)))
        self._b0, self._b1 = pc.band_row0, pc.band_row0 + pc.band_h
        self._bind(self.frames)
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
        fits = math.prod(shape) * word.itemsize <= TABLE_MAX_BYTES
        self._patch_table = np.zeros(shape, dtype=word) if fits else None
        self._patch_rows_done = np.zeros(shape[0], dtype=bool)

    _RING = ("_hist_r", "_hist_c", "_pos", "_whole")  # what pushes change, besides frames

    def _bind(self, frames: np.ndarray) -> None:
        """Make ``frames`` the stacks, with the views the fast path writes through."""
        self.frames = frames
        if self._fast:
            self._words = frames.view(self._word)[..., 0]  # [N, size, size]
            self._flat = self._words.reshape(-1)  # a view: the words are contiguous
            self._bytes = frames.reshape(-1)
            self._band = self._words[:, self._b0 : self._b1]  # [N, band_h, size]

    def __getstate__(self) -> dict[str, object]:
        """For ``copy.deepcopy`` and ``pickle``: the frames and the rings, not the views.

        A copied view would be a new array of its own, no longer the frames
        (the copy's observations would stay frozen); caches are rebuilt.
        """
        state: dict[str, object] = {
            "renderer": self.renderer,
            "num": self.num,
            "depth": self.depth,
            "frames": self.frames,
        }
        if self._fast:
            state.update({name: getattr(self, name) for name in self._RING})
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        """Rebuild from :meth:`__getstate__`: the views over the (copied) frames."""
        self.__init__(state["renderer"], state["num"], state["depth"])  # type: ignore[misc]
        self._bind(state["frames"])  # type: ignore[arg-type]
        if self._fast:
            for name in self._RING:
                setattr(self, name, state[name])

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

    def load(self, frames: np.ndarray) -> np.ndarray:
        """Set every game's stack to ``frames`` (``[N, size, size, depth]``, e.g. a snapshot's).

        Where the stacked ball windows lie is not known then, so the next
        ``depth`` pushes shift whole stacks (as after positions the tables do
        not cover); from then on the fast path is exact again.
        """
        self.frames[...] = frames
        if self._fast:
            self._hist_r[:] = 0
            self._hist_c[:] = 0
            self._whole = self.depth
        return self.frames

    def push(self, ball_x: np.ndarray, ball_y: np.ndarray, paddle_x: np.ndarray) -> np.ndarray:
        """Drop every game's oldest frame and add the frame of its state (``[N]``) on top."""
        if not self._fast:
            push_frame(self.frames, self.renderer.render(ball_x, ball_y, paddle_x))
            return self.frames
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
