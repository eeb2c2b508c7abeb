"""The Catch game, written once: pure reset and step over arrays of N games.

The book's rules (*Deep Learning with Keras*, ch. 8): within a step the paddle
moves, then the ball; when the ball's ``y >= catch_y`` the step pays ``+1`` if
ball and paddle overlap (touching edges do not count, as pygame's
``colliderect``), else ``-1``. The single env is a batch of one; game ``i``
draws its balls from its own generator ``rngs[i]``, no hidden state.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ACTION_LEFT, ACTION_STAY, ACTION_RIGHT = 0, 1, 2
A, Rngs = np.ndarray, Sequence[np.random.Generator]  # shapes in the docstrings; one per game
# Upper bounds, far beyond any game here, so a typo (width=10**9) is refused at once, named:
MAX_WORLD_SIZE = 10_000  # width and height: 25 x the book's 400
MAX_FRAME_SIZE = 1024  # frame_size: 12.8 x the book's 80
MAX_FRAME_STACK = 64  # frame_stack: 16 x the book's 4
MAX_BALLS_PER_GAME = 10**9  # counts and episode lengths stay far inside int64
WALLS, SPAWNS = ("clamp", "book"), ("visible", "book")
_POSITIVE = ("width", "height", "ball_size", "ball_speed", "paddle_width", "paddle_height")
_POSITIVE += ("paddle_speed", "balls_per_game")  # CatchParams' other ints are >= 0


@dataclass(frozen=True)
class CatchParams:
    """Geometry (world px), speeds and variants of one Catch game; defaults: the book's game.

    Two book quirks are off by default: ``walls="book"`` (the trained game's bounce,
    to x = 20 / 330; else the paddle stops at the wall) and ``spawn="book"`` (balls
    from x in ``[0, width]``: one at x = 400 can never be caught).
    """

    width: int = 400  # at most MAX_WORLD_SIZE, as height
    height: int = 400
    ball_size: int = 20
    ball_start_y: int = 10  # the top edge of a new ball
    ball_speed: int = 10  # px fallen per step
    drift: int = 0  # largest sideways speed, drawn per ball in [-drift, drift]; walls bounce
    paddle_width: int = 50
    paddle_height: int = 10
    paddle_y: int = 350  # the paddle's top edge
    paddle_start_x: int = 200
    paddle_speed: int = 20  # px per left/right action
    catch_y: int = 340  # a ball is decided on the step its top edge reaches it
    balls_per_game: int = 1  # the book trains on 1; its human game has 100
    walls: str = "clamp"
    spawn: str = "visible"

    def __post_init__(self) -> None:
        ints = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.type == "int"}
        for name, v in ints.items():
            if not is_int(v):
                raise TypeError(f"CatchParams.{name} must be an int, got {v!r}")
        highs = {"width": MAX_WORLD_SIZE, "height": MAX_WORLD_SIZE, "paddle_speed": self.width}
        highs["balls_per_game"] = MAX_BALLS_PER_GAME
        for name, v in ints.items():
            if v < (low := int(name in _POSITIVE)):
                raise ValueError(f"CatchParams.{name} must be {'> 0' if low else '>= 0'}, got {v}")
            if v > highs.get(name, v):
                raise ValueError(f"CatchParams.{name} must be <= {highs[name]}, got {v}")
        w, h, b, pmax, book = self.width, self.height, self.ball_size, self.paddle_max_x, "book"
        for ok, why in (
            (self.walls in WALLS, f"walls must be one of {WALLS}, got {self.walls!r}"),
            (self.spawn in SPAWNS, f"spawn must be one of {SPAWNS}, got {self.spawn!r}"),
            (max(b, self.paddle_width) <= w, "ball_size and paddle_width must not exceed width"),
            (self.paddle_start_x <= pmax, f"paddle_start_x is past the right wall (max {pmax})"),
            (self.walls != book or self.paddle_speed <= pmax, "walls='book' bounces paddle_speed "
             f"px in from a wall: it must not exceed width - paddle_width ({pmax})"),
            (self.paddle_y + self.paddle_height <= h, "the paddle must lie inside the height"),
            (self.catch_y > self.ball_start_y, "catch_y must lie below ball_start_y"),
            (self.landing_y + b <= h, f"a ball lands at y={self.landing_y}, below the world"),
            (2 * self.drift <= w - b, "drift is too large for the width"),
        ):  # fmt: skip
            if not ok:
                raise ValueError(f"CatchParams: {why}")

    @classmethod
    def book(cls, **overrides: Any) -> CatchParams:
        """The book's trained game, quirks included (bounce walls, spawn up to x = 400)."""
        return cls(**{"walls": "book", "spawn": "book", **overrides})

    @classmethod
    def bsuite(cls, **overrides: Any) -> CatchParams:
        """Bsuite's Catch: a 10-row x 5-column board, ball and paddle one cell each."""
        base = dict(width=5, height=10, ball_size=1, ball_start_y=0, ball_speed=1, catch_y=9)
        base.update(paddle_width=1, paddle_height=1, paddle_y=9, paddle_start_x=2, paddle_speed=1)
        return cls(**{**base, **overrides})

    @property
    def paddle_max_x(self) -> int:
        """Largest left edge of the paddle."""
        return self.width - self.paddle_width

    @functools.cached_property
    def paddle_moves(self) -> np.ndarray:
        """The paddle's next x, int64 ``[paddle_max_x + 1, 3]``: per x and action, walls applied."""
        m, speed = self.paddle_max_x, self.paddle_speed
        x = np.arange(m + 1)[:, None] + np.array([-speed, 0, speed])
        if self.walls == "clamp":
            return np.clip(x, 0, m)
        return np.where(x < 0, speed, np.where(x > m, m - speed, x))  # the book's bounce

    @property
    def spawn_max_x(self) -> int:
        """Largest left edge a new ball may get."""
        return self.width if self.spawn == "book" else self.width - self.ball_size

    @property
    def steps_per_ball(self) -> int:
        """Steps from a ball's spawn to its outcome (book: 33)."""
        return -(-(self.catch_y - self.ball_start_y) // self.ball_speed)

    @property
    def landing_y(self) -> int:
        """The ball's top edge on the step its outcome is decided (book: 340)."""
        return self.ball_start_y + self.steps_per_ball * self.ball_speed

    @property
    def max_episode_steps(self) -> int:
        """Length of every game (book: 33 steps for one ball)."""
        return self.steps_per_ball * self.balls_per_game


@dataclass(frozen=True)
class CatchState:
    """One game's state as ints (``batch.get(i)``); ``landed``: its ball was just decided."""

    ball_x: int  # left edge
    ball_y: int  # top edge
    ball_vx: int
    paddle_x: int
    balls_left: int  # the current ball included
    caught: int = 0
    missed: int = 0
    landed: bool = False

    @property
    def balls_played(self) -> int:
        """Balls decided so far."""
        return self.caught + self.missed


_FIELDS = tuple(f.name for f in dataclasses.fields(CatchState))


@dataclass
class BatchState:
    """N games as arrays ``[N]``: int64, ``landed`` bool; the fields of :class:`CatchState`."""

    ball_x: np.ndarray
    ball_y: np.ndarray
    ball_vx: np.ndarray
    paddle_x: np.ndarray
    balls_left: np.ndarray
    caught: np.ndarray
    missed: np.ndarray
    landed: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> BatchState:
        """N games, all fields zero."""
        return cls(*np.zeros((7, n), np.int64), landed=np.zeros(n, bool))

    @classmethod
    def of(cls, states: Sequence[CatchState]) -> BatchState:
        """The batch of these games."""
        fields = np.array([[getattr(s, k) for s in states] for k in _FIELDS], np.int64)
        return cls(*fields[:-1], landed=fields[-1].astype(bool))

    def get(self, i: int) -> CatchState:
        """Game ``i`` as a :class:`CatchState`."""
        return CatchState(*(getattr(self, name)[i].item() for name in _FIELDS))

    def merge(self, idx: np.ndarray, other: BatchState) -> BatchState:
        """A new batch: these games, with games ``idx`` replaced by ``other``'s ``[len(idx)]``."""
        out = BatchState(*(getattr(self, name).copy() for name in _FIELDS))
        for name in _FIELDS:
            getattr(out, name)[idx] = getattr(other, name)
        return out


def check_reset_options(params: CatchParams, options: Any, owner: str) -> dict[str, int]:
    """``reset(options=...)`` checked: ``ball_x``, ``ball_vx``, ``paddle_x`` in their ranges."""
    name, options = f"{owner}.reset", {} if options is None else options
    if not isinstance(options, dict):
        raise TypeError(f"{name}: options must be a dict or None, got {type(options).__name__}")
    ranges = {"ball_x": (0, params.spawn_max_x), "ball_vx": (-params.drift, params.drift)}
    ranges["paddle_x"] = (0, params.paddle_max_x)  # the first ball's left edge, speed; paddle x
    unknown = sorted(set(options) - set(ranges), key=str)
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {unknown}; the options are {list(ranges)}")
    return {k: check_int_range(f"{name} option {k!r}", v, *ranges[k]) for k, v in options.items()}


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int or a numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int_range(name: str, value: Any, low: int, high: int, what: str = "") -> int:
    """``value`` as an int if it is one in ``[low, high]``, else a ``ValueError`` naming it."""
    if not (is_int(value) and low <= value <= high):
        about = f" ({what})" if what else ""
        raise ValueError(f"{name}{about} must be an int in [{low}, {high}], got {value!r}")
    return int(value)


def _spawn(params: CatchParams, rngs: Rngs) -> tuple[list, list]:
    high, d = params.spawn_max_x + 1, params.drift
    pairs = [(int(r.integers(0, high)), int(r.integers(-d, d + 1)) if d else 0) for r in rngs]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def reset_batch(params: CatchParams, rngs: Rngs, **start: int) -> BatchState:
    """Start ``len(rngs)`` games: paddles at ``paddle_start_x``, a new ball at the top of each.

    ``start``: :func:`check_reset_options`'s values, set in every game (the balls still drawn).
    """
    p, n = params, len(rngs)
    x, vx = _spawn(p, rngs)
    y, px, left = [p.ball_start_y] * n, [p.paddle_start_x] * n, [p.balls_per_game] * n
    fields = np.array([x, y, vx, px, left, [0] * n, [0] * n], np.int64)  # [7, N]
    batch = BatchState(*fields, landed=np.zeros(n, bool))
    for name, value in start.items():
        getattr(batch, name)[:] = value
    return batch


def drift_batch(params: CatchParams, x: A, vx: A) -> tuple[A, A]:
    """Balls moved ``vx`` px sideways, off the walls: new ``(x, vx)``.

    A ball past the right wall (``spawn="book"``) moving right turns where it is.
    """
    m = params.width - params.ball_size  # the largest left edge: a ball bounces back from it
    nx = x + vx
    left, right = nx < 0, (nx > m) & (vx > 0)  # right: only balls moving right turn there
    nx = np.where(left, -nx, np.where(right, np.where(x <= m, 2 * m - nx, x - vx), nx))
    return nx, np.where(left | right, -vx, vx)


def step_batch(
    params: CatchParams, state: BatchState, actions: A, rngs: Rngs
) -> tuple[BatchState, A, A]:
    """Advance N games by one step: ``(next_state, reward float32 [N], terminated bool [N])``.

    ``actions``: int ``[N]`` of 0 (left), 1 (stay), 2 (right), already checked; paddles in
    ``[0, paddle_max_x]``. ``state`` is not changed. No game may be over; a game whose
    ball landed on the last step gets a new ball first, drawn from its generator.
    """
    p = params
    x, y, vx = state.ball_x, state.ball_y, state.ball_vx
    if np.count_nonzero(state.landed):  # multi-ball games: the next ball spawns
        i = np.flatnonzero(state.landed)
        nx, nvx = _spawn(p, [rngs[k] for k in i])
        x, y, vx = x.copy(), y.copy(), vx.copy()
        x[i], vx[i], y[i] = nx, nvx, p.ball_start_y
    px = p.paddle_moves[state.paddle_x, actions]
    y = y + p.ball_speed
    if p.drift:
        x, vx = drift_batch(p, x, vx)
    landed = y >= p.catch_y
    nxt = BatchState(x, y, vx, px, state.balls_left, state.caught, state.missed, landed)
    if not np.count_nonzero(landed):  # most steps: no ball is decided, no game ends
        return nxt, np.zeros(len(px), dtype=np.float32), np.zeros(len(px), dtype=bool)
    hit = (x < px + p.paddle_width) & (px < x + p.ball_size)
    hit &= (y < p.paddle_y + p.paddle_height) & (p.paddle_y < y + p.ball_size)
    nxt.caught = state.caught + (landed & hit)
    nxt.missed = state.missed + (landed & ~hit)
    nxt.balls_left = state.balls_left - landed
    reward = np.where(landed, np.where(hit, 1.0, -1.0), 0.0).astype(np.float32)
    return nxt, reward, nxt.balls_left == 0
