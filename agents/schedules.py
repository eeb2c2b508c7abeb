"""Exploration schedules: ε as a pure function of the step (or the game) count.

Two shapes, each a plain function, and :class:`EpsilonSchedule`, which adds
the observe phase (ε = 1, pure random play to fill the replay memory) in front:

- ``linear_epsilon``: from ``start`` to ``end`` in a straight line over
  ``duration`` steps, then ``end`` (DeepMind's Nature DQN: 1.0 → 0.1 over 1M
  frames; Dopamine's ``linearly_decaying_epsilon`` without its warm-up).
- ``book_epsilon``: the book's schedule, counted in games (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "SCHEDULE_KINDS",
    "EpsilonSchedule",
    "book_epsilon",
    "linear_epsilon",
]

SCHEDULE_KINDS = ("linear", "book")


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """ε going linearly from ``start`` (step 0) to ``end`` (step ``duration``), then ``end``.

    ``start + (end - start) * min(step / duration, 1)``; a ``duration <= 0``
    gives ``end`` at once.
    """
    if duration <= 0:
        return float(end)
    frac = min(max(step, 0) / duration, 1.0)
    return float(start + (end - start) * frac)


def book_epsilon(
    game: int,
    observe_games: int = 100,
    start: float = 0.1,
    end: float = 1e-4,
    total_games: int = 2100,
) -> float:
    """The book's ε for game ``game`` (counted from 0, observe games included).

    The book plays ``observe_games`` games at random (ε = 1 here), then acts
    ε-greedily with an ε that it lowers by ``(start - end) / total_games`` after
    *every* game, the observe games included, and stops lowering at ``end``::

        ε(game) = 1                                            if game < observe_games
                = max(end, start - (start - end) * game / total_games)   otherwise

    so the first greedy game already starts a little below ``start`` (the book:
    100 observe + 2000 training games, ``total_games = 2100``; ε = 0.0952 at
    game 100, reaching ``end`` only at the last game). One quirk is not kept:
    the book's ``e <= NUM_EPOCHS_OBSERVE`` plays 101 random games, not 100.
    """
    if game < observe_games:
        return 1.0
    if total_games <= 0:
        return float(end)
    return float(max(end, start - (start - end) * game / total_games))


@dataclass(frozen=True)
class EpsilonSchedule:
    """An ε schedule with an observe phase, called once per step as ``schedule(step, game)``.

    Attributes:
        kind: ``"linear"`` or ``"book"``.
        start: ε when the decay starts (``None``: Nature DQN's 1.0, the book's 0.1).
        end: ε the decay approaches (book: 1e-4; Nature DQN: 0.1).
        duration: For ``"linear"`` the steps from ``start`` to ``end``; for
            ``"book"`` its ``total_games`` (games, observe games included; book: 2100).
        observe: Length of the initial random phase (ε = 1): in env steps for
            ``"linear"``, in games for ``"book"`` (book: 100 games). The linear
            decay starts when it ends; the book's counts from game 0.

    """

    kind: Literal["linear", "book"] = "linear"
    start: float | None = None
    end: float = 0.05
    duration: int = 10_000
    observe: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(
                f"EpsilonSchedule: unknown kind {self.kind!r}; choose one of {SCHEDULE_KINDS}"
            )
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"EpsilonSchedule: {name} must lie in [0, 1], got {value}")
        if self.observe < 0:
            raise ValueError(f"EpsilonSchedule: observe must be >= 0, got {self.observe}")

    def __call__(self, step: int, game: int) -> float:
        """ε for the current env ``step`` and ``game`` (both counted from 0)."""
        if self.kind == "book":
            start = 0.1 if self.start is None else self.start
            return book_epsilon(game, self.observe, start, self.end, self.duration)
        if step < self.observe:
            return 1.0
        start = 1.0 if self.start is None else self.start
        return linear_epsilon(step - self.observe, start, self.end, self.duration)
