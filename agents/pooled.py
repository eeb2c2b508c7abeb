"""Frames summed once, for a Q-network that starts with a block mean of its frames.

The ``tiny`` network's first layer averages 4 x 4 blocks of the 80 x 80
frames. A DQN replays every stored frame about a hundred times (64 samples,
two stacks each, four frames a stack, two gradient steps a round of 8
transitions), so it pays to pool each frame once, when it enters the replay
memory, and to train the rest of the network (:func:`~catchrl.agents.networks.block_mean_body`)
on them. Measured on 2 CPU cores: the train step at batch 64 goes from
about 5.1 to 2.8 ms, and the memory's stacks get smaller.

The random shifts of DrQ (:func:`catchrl.agents.augment.random_shift`) move a
frame stack by whole pixels *before* the pool, which a 20 x 20 block map cannot
show. So the memory keeps, for each frame, its rows summed by the block
(``H / b`` rows) and then the sum of every ``b`` neighbouring columns of the
edge-padded frame (``W + 2 * max_shift - b + 1`` windows). The pool of a frame
shifted by ``s`` pixels is then every ``b``-th window from ``max_shift - s``:
a strided slice, divided by ``b**2``. On integer frames all of it is exact
(integer sums, and a power-of-two divisor), so the values equal to the bit the
network's ``AveragePooling2D`` of the shifted frame, and the offsets are drawn
as :func:`random_shift` draws them (one call of ``B`` integers), so the
augmentation is the same.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TINY_BLOCK", "PooledFrames"]

TINY_BLOCK = 4
"""Side of the ``tiny`` network's first pooling block (80 x 80 frames -> 20 x 20)."""


class PooledFrames:
    """Window sums of pixel frames, and the block means of their shifted copies.

    Args:
        block: The block's side (the network's pool size), a power of two (the
            means are then exact).
        max_shift: Largest shift of :meth:`shifted`, in pixels (0: no shifts).
        frame_shape: ``(H, W)`` of one frame; ``0 <= max_shift < W``, ``block <= H, W``.

    """

    stored_dtype = np.dtype(np.uint16)
    """The stored sums' dtype (a block of 255s sums to at most 255 * block**2)."""

    def __init__(self, block: int, max_shift: int, frame_shape: tuple[int, int]) -> None:
        self.block, self.max_shift = int(block), int(max_shift)
        self.height, self.width = (int(d) for d in frame_shape)
        if not 1 <= self.block <= min(self.height, self.width) or block & (block - 1):
            raise ValueError(
                f"PooledFrames: block must be a power of two in [1, "
                f"{min(self.height, self.width)}], got {block}"
            )
        if not 0 <= self.max_shift < self.width:
            raise ValueError(
                f"PooledFrames: max_shift must be in [0, {self.width - 1}], got {max_shift}"
            )
        if 255 * self.block**2 > np.iinfo(self.stored_dtype).max:
            raise ValueError(f"PooledFrames: block {block} is too large for uint16 sums")
        self.rows = self.height // self.block
        self.cols = self.width // self.block  # block columns of the pool
        self.windows = self.width + 2 * self.max_shift - self.block + 1

    def stored_shape(self, channels: int) -> tuple[int, int, int]:
        """Shape of one stored observation of ``channels`` stacked frames."""
        return (self.rows, self.windows, int(channels))

    def pooled_shape(self, channels: int) -> tuple[int, int, int]:
        """Shape of one observation's block means (the body network's input)."""
        return (self.rows, self.cols, int(channels))

    def store(self, frames: np.ndarray) -> np.ndarray:
        """Window sums ``[N, H/b, W + 2m - b + 1, C]`` uint16 of uint8 frames ``[N, H, W, C]``."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:3] != (self.height, self.width):
            raise ValueError(
                f"PooledFrames.store: expected [N, {self.height}, {self.width}, C] frames, "
                f"got shape {frames.shape}"
            )
        if frames.dtype != np.uint8:
            raise ValueError(f"PooledFrames.store: expected uint8 frames, got {frames.dtype}")
        n, _, _, c = frames.shape
        b, m = self.block, self.max_shift
        top = frames[:, : self.rows * b]
        rows = top.reshape(n, self.rows, b, self.width, c).sum(axis=2, dtype=self.stored_dtype)
        if m:  # the columns a shift brings in repeat the edge ones
            rows = np.concatenate(
                [np.repeat(rows[:, :, :1], m, axis=2), rows, np.repeat(rows[:, :, -1:], m, axis=2)],
                axis=2,
            )
        windows = rows[:, :, : self.windows].copy()
        for i in range(1, b):
            windows += rows[:, :, i : i + self.windows]
        return windows

    def unshifted(self, stored: np.ndarray) -> np.ndarray:
        """Block means ``[B, H/b, W/b, C]`` float32 of stored observations, as they are."""
        start = self.max_shift
        sums = stored[:, :, start : start + self.block * self.cols : self.block]
        return sums.astype(np.float32) / self.block**2

    def shifted(self, stored: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Block means ``[B, H/b, W/b, C]`` float32 of each stored stack shifted sideways.

        Each sample moves by its own integer offset in ``[-max_shift, max_shift]``
        (one draw of ``B`` integers from ``rng``, as :func:`random_shift`), every
        frame of it alike, the edge columns repeated.
        """
        m, b, span = self.max_shift, self.block, self.block * self.cols
        offsets = rng.integers(-m, m + 1, size=len(stored))
        out = np.empty((len(stored), self.rows, self.cols, stored.shape[-1]), np.float32)
        for i, start in enumerate((m - offsets).tolist()):  # a strided slice each: ~1 us
            out[i] = stored[i, :, start : start + span : b]
        out /= b * b
        return out
