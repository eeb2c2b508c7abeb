"""Exploration: ε as a pure function of the env step (or, for the book's, the game) count.

:class:`EpsilonSchedule` puts the observe phase (ε = 1, random play to fill the
replay memory) in front of one of two shapes: ``linear_epsilon`` (Nature DQN;
Dopamine's ``linearly_decaying_epsilon``) or ``book_epsilon`` (counted in games).
"""

from __future__ import annotations

from dataclasses import dataclass


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """ε from ``start`` at step 0 linearly to ``end`` at ``duration``, then ``end``."""
    if duration <= 0:
        return float(end)
    return float(start + (end - start) * min(max(step, 0) / duration, 1.0))


def book_epsilon(
    game: int, observe_games: int, end: float, total_games: int, start: float = 0.1
) -> float:
    """The book's ε for game ``game`` (from 0, observe games included).

    1 for the ``observe_games`` random games, then lowered by ``(start - end) /
    total_games`` per game counted from game 0, down to ``end``. The book's listing:
    100 observe games, 2,000 training games, ``total_games`` 2,100 (ε = 0.0952 at game
    100), start 0.1, end 1e-4. The book's off-by-one (101 random games) is not kept.
    """
    if game < observe_games:
        return 1.0
    if total_games <= 0:
        return float(end)
    return float(max(end, start - (start - end) * game / total_games))


@dataclass(frozen=True)
class EpsilonSchedule:
    """ε with an observe phase, called once per step as ``schedule(step, game)``.

    ``kind``: ``"linear"`` (from 1, over env steps) or ``"book"`` (from 0.1, over games);
    ``duration`` and ``observe``: env steps, or the book's total and observe games.
    """

    kind: str
    end: float
    duration: int
    observe: int

    def __call__(self, step: int, game: int) -> float:
        """ε for the current env ``step`` and ``game`` (both counted from 0)."""
        if self.kind == "book":
            return book_epsilon(game, self.observe, self.end, self.duration)
        if step < self.observe:
            return 1.0
        return linear_epsilon(step - self.observe, 1.0, self.end, self.duration)
