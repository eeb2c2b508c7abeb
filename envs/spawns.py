"""New balls drawn ahead in blocks, each game from its own generator (the vector env's spawns)."""

from __future__ import annotations

import numpy as np

from catchrl.envs.core import CatchParams

__all__ = ["SPAWN_BLOCK", "SpawnDraws"]

SPAWN_BLOCK = 64
"""Spawns drawn per refill of one game: a Python-level generator call per 64 balls."""


class SpawnDraws:
    """Each game's coming ball spawns, drawn ahead in blocks from the game's own generator.

    ``Generator.integers`` gives the same numbers asked one at a time or for a
    block, and with per-element bounds it interleaves the x and speed draws
    exactly as :func:`~catchrl.envs.core.reset_state` makes them one ball at a
    time, so drawing ahead changes no game (the parity tests with N single
    envs check it). Starting balls then needs array indexing only, instead of
    one Python-level generator call per game.

    Args:
        params: The game (spawn range and drift).
        num: Number of games.
        block: Spawns drawn per refill of one game.

    """

    def __init__(self, params: CatchParams, num: int, block: int = SPAWN_BLOCK) -> None:
        self.block, self.high, self.drift = block, params.spawn_max_x + 1, params.drift
        self.x = np.zeros((num, block), dtype=np.int64)
        self.vx = np.zeros((num, block), dtype=np.int64)
        self.next = np.full(num, block, dtype=np.int64)  # all empty
        if self.drift:  # x in [0, high), vx in [-drift, drift], alternating
            self._lows = np.tile(np.array([0, -self.drift]), block)
            self._highs = np.tile(np.array([self.high, self.drift + 1]), block)

    def forget(self, idx: np.ndarray | list[int]) -> None:
        """Drop what was drawn for games ``idx`` (their generators were replaced)."""
        self.next[idx] = self.block

    def draw(
        self, idx: np.ndarray, rngs: list[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next spawn ``(x, vx)`` of each game in ``idx`` (int64 ``[len(idx)]`` each)."""
        k = self.next[idx]
        empty = k >= self.block
        if empty.any():
            for i in idx[empty]:
                self._fill(int(i), rngs[i])
            k = self.next[idx]
        self.next[idx] = k + 1
        return self.x[idx, k], self.vx[idx, k]

    def _fill(self, i: int, rng: np.random.Generator) -> None:
        if self.drift:
            both = rng.integers(self._lows, self._highs)
            self.x[i], self.vx[i] = both[0::2], both[1::2]
        else:
            self.x[i] = rng.integers(0, self.high, size=self.block)
        self.next[i] = 0
