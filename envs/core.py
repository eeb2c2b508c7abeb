"""The Catch game as pure functions over a small frozen state.

The defaults of :class:`CatchParams` are the game of *Deep Learning with Keras*
(ch. 8): a 400 x 400 world, a 20 x 20 ball that starts at ``y = 10`` and falls
10 px per step, a 50 x 10 paddle at ``y = 350`` moving 20 px per step. Within a
step the paddle moves, then the ball; when the ball's ``y >= catch_y`` the step
pays ``+1`` if the ball and paddle rectangles overlap (touching edges do not
count, as pygame's ``colliderect``) and ``-1`` otherwise.

Two of the book's quirks are options, not defaults (see ``walls`` and
``spawn``): by default the paddle is clamped to the screen and every ball
starts fully on screen, so every ball can be caught.

Nothing here holds hidden state: all randomness comes from the
``numpy.random.Generator`` passed in. :func:`step_batch` is the same game over
arrays of N games; ``tests/envs/test_core.py`` checks the two agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from catchrl.envs.limits import MAX_BALLS_PER_GAME, MAX_WORLD_SIZE, check_int_range

__all__ = [
    "ACTION_LEFT",
    "ACTION_RIGHT",
    "ACTION_STAY",
    "RESET_OPTIONS",
    "BatchState",
    "CatchParams",
    "CatchState",
    "check_reset_options",
    "draw_spawns",
    "drift_batch",
    "reset_batch",
    "reset_state",
    "spawn_balls",
    "step_batch",
    "step_state",
]

ACTION_LEFT, ACTION_STAY, ACTION_RIGHT = 0, 1, 2
WALLS = ("clamp", "book")
SPAWNS = ("visible", "book")


@dataclass(frozen=True)
class CatchParams:
    """Geometry, speeds and variant switches of one Catch game (pixels of the world).

    Defaults are the book's game, except the two documented quirk switches.

    Attributes:
        width: World width in px (book: 400; at most ``MAX_WORLD_SIZE``, 10 000).
        height: World height in px (book: 400; at most ``MAX_WORLD_SIZE``).
        ball_size: Side of the square ball in px (book: 20).
        ball_start_y: Top edge of a new ball (book: 10).
        ball_speed: Pixels the ball falls per step (book: 10).
        drift: Largest horizontal ball speed in px/step. Each ball draws its
            speed uniformly from the integers in ``[-drift, drift]`` and bounces
            off the side walls (a ball started past the right wall by
            ``spawn="book"`` turns around there). ``0`` (book) falls straight down.
        paddle_width: Paddle width in px (book: 50).
        paddle_height: Paddle height in px (book: 10).
        paddle_y: Top edge of the paddle (book: 350).
        paddle_start_x: Left edge of the paddle at the start of a game (book: 200).
        paddle_speed: Pixels the paddle moves per left/right action (book: 20; at
            most ``width``).
        catch_y: The step on which the ball's top edge reaches ``catch_y`` is
            decided: +1 if it overlaps the paddle, else -1 (book: 340).
        balls_per_game: Balls in one game (episode). The book trains on 1 (33
            steps); its human-playable game has 100 (at most ``MAX_BALLS_PER_GAME``).
        walls: ``"clamp"`` keeps the paddle in ``[0, width - paddle_width]``
            (the book's human game; default). ``"book"`` is the trained game's
            "bounce": moving past the left wall puts the paddle one step in from
            it (x = 20), past the right wall one step in from it (x = 330).
        spawn: ``"visible"`` draws the ball's left edge from
            ``[0, width - ball_size]`` so every ball is on screen (default).
            ``"book"`` draws from ``[0, width]`` as the book does: a ball at
            x > 380 is partly or wholly off screen, and one at x = 400 can
            never be caught (best win rate 400/401).

    """

    width: int = 400
    height: int = 400
    ball_size: int = 20
    ball_start_y: int = 10
    ball_speed: int = 10
    drift: int = 0
    paddle_width: int = 50
    paddle_height: int = 10
    paddle_y: int = 350
    paddle_start_x: int = 200
    paddle_speed: int = 20
    catch_y: int = 340
    balls_per_game: int = 1
    walls: str = "clamp"
    spawn: str = "visible"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            not_int = not isinstance(value, (int, np.integer)) or isinstance(value, bool)
            if f.type == "int" and not_int:
                raise TypeError(f"CatchParams.{f.name} must be an int, got {value!r}")
        positive = (
            "width",
            "height",
            "ball_size",
            "ball_speed",
            "paddle_width",
            "paddle_height",
            "paddle_speed",
            "balls_per_game",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"CatchParams.{name} must be > 0, got {getattr(self, name)}")
        for name in ("drift", "ball_start_y", "paddle_y", "paddle_start_x"):
            if getattr(self, name) < 0:
                raise ValueError(f"CatchParams.{name} must be >= 0, got {getattr(self, name)}")
        for name, high in (
            ("width", MAX_WORLD_SIZE),
            ("height", MAX_WORLD_SIZE),
            ("paddle_speed", self.width),
            ("balls_per_game", MAX_BALLS_PER_GAME),
        ):
            if getattr(self, name) > high:
                raise ValueError(
                    f"CatchParams.{name} must be <= {high}, got {getattr(self, name)} "
                    "(the bounds are in catchrl.envs.limits)"
                )
        if self.walls not in WALLS:
            raise ValueError(f"CatchParams.walls must be one of {WALLS}, got {self.walls!r}")
        if self.spawn not in SPAWNS:
            raise ValueError(f"CatchParams.spawn must be one of {SPAWNS}, got {self.spawn!r}")
        if self.ball_size > self.width or self.paddle_width > self.width:
            raise ValueError("ball_size and paddle_width must not exceed width")
        if self.paddle_start_x > self.paddle_max_x:
            raise ValueError(
                f"paddle_start_x={self.paddle_start_x} puts the paddle past the right wall "
                f"(max {self.paddle_max_x})"
            )
        if self.walls == "book" and self.paddle_speed > self.paddle_max_x:
            raise ValueError(
                f"walls='book' bounces the paddle paddle_speed px in from a wall, so "
                f"paddle_speed ({self.paddle_speed}) must not exceed width - paddle_width "
                f"({self.paddle_max_x})"
            )
        if self.paddle_y + self.paddle_height > self.height:
            raise ValueError("the paddle (paddle_y + paddle_height) must lie inside the height")
        if self.catch_y <= self.ball_start_y:  # else a ball would land before it falls
            raise ValueError(
                f"catch_y ({self.catch_y}) must lie below ball_start_y ({self.ball_start_y})"
            )
        if self.landing_y + self.ball_size > self.height:
            raise ValueError(
                f"a ball lands at y={self.landing_y}, below the world (height {self.height}); "
                "lower catch_y or ball_speed"
            )
        if self.drift > 0 and 2 * self.drift > self.width - self.ball_size:
            raise ValueError("drift is too large for the width (one step would cross the world)")

    @classmethod
    def book(cls, **overrides: Any) -> CatchParams:
        """The book's trained game, quirks included (bounce walls, spawn up to x = 400)."""
        return cls(**{"walls": "book", "spawn": "book", **overrides})

    @classmethod
    def bsuite(cls, **overrides: Any) -> CatchParams:
        """Bsuite's Catch: a 10-row x 5-column board, ball and paddle one cell each.

        With these numbers the dynamics here are exactly bsuite's: the ball
        falls one row per step from row 0, the paddle (clamped) moves one
        column, and on row 9 the step pays +1 if the columns match, else -1.
        """
        base = dict(
            width=5,
            height=10,
            ball_size=1,
            ball_start_y=0,
            ball_speed=1,
            paddle_width=1,
            paddle_height=1,
            paddle_y=9,
            paddle_start_x=2,
            paddle_speed=1,
            catch_y=9,
        )
        return cls(**{**base, **overrides})

    @property
    def paddle_max_x(self) -> int:
        """Largest left edge of the paddle."""
        return self.width - self.paddle_width

    @property
    def spawn_max_x(self) -> int:
        """Largest left edge a new ball may get."""
        return self.width if self.spawn == "book" else self.width - self.ball_size

    @property
    def ball_max_x(self) -> int:
        """Largest left edge a drifting ball bounces back from."""
        return self.width - self.ball_size

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
    """Everything that changes during one game.

    Attributes:
        ball_x: Left edge of the ball.
        ball_y: Top edge of the ball.
        ball_vx: Horizontal speed of the ball (0 unless ``drift``).
        paddle_x: Left edge of the paddle.
        balls_left: Balls still to be decided in this game, the current one included.
        caught: Balls caught so far.
        missed: Balls missed so far.
        landed: The current ball was just decided; a new one spawns on the next step.

    """

    ball_x: int
    ball_y: int
    ball_vx: int
    paddle_x: int
    balls_left: int
    caught: int = 0
    missed: int = 0
    landed: bool = False

    @property
    def balls_played(self) -> int:
        """Balls decided so far."""
        return self.caught + self.missed


# --- reset options ----------------------------------------------------------

RESET_OPTIONS = ("ball_x", "ball_vx", "paddle_x")
"""The keys ``reset(options=...)`` takes: the first ball's left edge and speed, the paddle's x."""


def check_reset_options(params: CatchParams, options: Any, owner: str) -> dict[str, int]:
    """Validate ``reset(options=...)``: the start positions it sets, as ints by name.

    Keys (all optional, world pixels; on the grid a pixel is a cell):

    - ``ball_x``: left edge of the game's first ball, in ``[0, spawn_max_x]``
      (``[0, width - ball_size]``; ``[0, width]`` with ``spawn="book"``);
    - ``ball_vx``: its horizontal speed, in ``[-drift, drift]``;
    - ``paddle_x``: left edge of the paddle, in ``[0, width - paddle_width]``.

    They replace what the reset drew or set; the generator draws as without
    them, so the later balls of the game are the same either way.

    Raises:
        TypeError: ``options`` is neither ``None`` nor a dict.
        ValueError: an unknown key, or a value that is not an int in its range;
            the message names the key and the value.

    """
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(
            f"{owner}.reset: options must be a dict or None, got {type(options).__name__}"
        )
    unknown = sorted(set(options) - set(RESET_OPTIONS), key=str)
    if unknown:
        raise ValueError(
            f"{owner}.reset: unknown option(s) {unknown}; the options are {list(RESET_OPTIONS)}"
        )
    ranges = {
        "ball_x": (0, params.spawn_max_x, "the first ball's left edge"),
        "ball_vx": (-params.drift, params.drift, "the first ball's x-speed, within drift"),
        "paddle_x": (0, params.paddle_max_x, "the paddle's left edge"),
    }
    return {
        key: check_int_range(f"{owner}.reset option {key!r}", value, *ranges[key])
        for key, value in options.items()
    }


# --- scalar (one game) ----------------------------------------------------


def _spawn(params: CatchParams, rng: np.random.Generator) -> tuple[int, int]:
    """Draw a new ball's left edge and horizontal speed (in this order)."""
    x = int(rng.integers(0, params.spawn_max_x + 1))
    vx = int(rng.integers(-params.drift, params.drift + 1)) if params.drift else 0
    return x, vx


def _move_paddle(params: CatchParams, x: int, action: int) -> int:
    x += (action - 1) * params.paddle_speed
    if params.walls == "clamp":
        return min(max(x, 0), params.paddle_max_x)
    if x < 0:  # the book's "bounce": one step back in from the wall
        return params.paddle_speed
    if x > params.paddle_max_x:
        return params.paddle_max_x - params.paddle_speed
    return x


def _drift(params: CatchParams, x: int, vx: int) -> tuple[int, int]:
    """Move a ball ``vx`` px sideways, bouncing off the walls (:func:`drift_batch` for arrays)."""
    m = params.ball_max_x
    if x + vx < 0:
        return -(x + vx), -vx
    if x + vx > m and vx > 0:  # a ball already past the wall (spawn="book") turns where it is
        return (2 * m - (x + vx) if x <= m else x - vx), -vx
    return x + vx, vx


def _overlaps(params: CatchParams, ball_x: int, ball_y: int, paddle_x: int) -> bool:
    """Pygame ``Rect.colliderect`` of ball and paddle: touching edges do not count."""
    return (
        ball_x < paddle_x + params.paddle_width
        and paddle_x < ball_x + params.ball_size
        and ball_y < params.paddle_y + params.paddle_height
        and params.paddle_y < ball_y + params.ball_size
    )


def reset_state(params: CatchParams, rng: np.random.Generator) -> CatchState:
    """Start a game: paddle at ``paddle_start_x``, a new ball at the top.

    The scalar twin of :func:`reset_batch` (as :func:`step_state` is of
    :func:`step_batch`): the same draws (:func:`_spawn`, which the batch's
    :func:`draw_spawns` calls per game) and the same fields, a parity test
    holding them equal. A batch of one would take 3x as long (31 us vs 8 us),
    which a single env pays at every game.
    """
    ball_x, ball_vx = _spawn(params, rng)
    return CatchState(
        ball_x=ball_x,
        ball_y=params.ball_start_y,
        ball_vx=ball_vx,
        paddle_x=params.paddle_start_x,
        balls_left=params.balls_per_game,
    )


def step_state(
    params: CatchParams, state: CatchState, action: int, rng: np.random.Generator
) -> tuple[CatchState, float, bool]:
    """Advance one game by one step.

    Args:
        params: The game's geometry and variants.
        state: The state before the step; must not be terminal.
        action: 0 = left, 1 = stay, 2 = right (already validated).
        rng: Source of the next ball's position (drawn only when a ball of a
            multi-ball game respawns).

    Returns:
        ``(next_state, reward, terminated)``.

    """
    ball_x, ball_y, vx = state.ball_x, state.ball_y, state.ball_vx
    if state.landed:
        ball_x, vx = _spawn(params, rng)
        ball_y = params.ball_start_y
    paddle_x = _move_paddle(params, state.paddle_x, action)
    ball_y += params.ball_speed
    if vx:
        ball_x, vx = _drift(params, ball_x, vx)
    reward, landed = 0.0, ball_y >= params.catch_y
    caught, missed, balls_left = state.caught, state.missed, state.balls_left
    if landed:
        if _overlaps(params, ball_x, ball_y, paddle_x):
            reward, caught = 1.0, caught + 1
        else:
            reward, missed = -1.0, missed + 1
        balls_left -= 1
    nxt = CatchState(
        ball_x=ball_x,
        ball_y=ball_y,
        ball_vx=vx,
        paddle_x=paddle_x,
        balls_left=balls_left,
        caught=caught,
        missed=missed,
        landed=landed,
    )
    return nxt, reward, balls_left == 0


# --- batched (N games as arrays) -----------------------------------------


@dataclass
class BatchState:
    """The state of N games as int64 arrays of shape ``[N]`` (``landed`` is bool).

    Mutable on purpose: the vector env updates it in place each step.
    """

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
        z = lambda: np.zeros(n, dtype=np.int64)  # noqa: E731
        return cls(z(), z(), z(), z(), z(), z(), z(), np.zeros(n, dtype=bool))

    def get(self, i: int) -> CatchState:
        """Game ``i`` as a :class:`CatchState`."""
        return CatchState(
            ball_x=int(self.ball_x[i]),
            ball_y=int(self.ball_y[i]),
            ball_vx=int(self.ball_vx[i]),
            paddle_x=int(self.paddle_x[i]),
            balls_left=int(self.balls_left[i]),
            caught=int(self.caught[i]),
            missed=int(self.missed[i]),
            landed=bool(self.landed[i]),
        )

    def set(self, i: int, s: CatchState) -> None:
        """Overwrite game ``i`` with ``s``."""
        self.ball_x[i], self.ball_y[i], self.ball_vx[i] = s.ball_x, s.ball_y, s.ball_vx
        self.paddle_x[i], self.balls_left[i] = s.paddle_x, s.balls_left
        self.caught[i], self.missed[i], self.landed[i] = s.caught, s.missed, s.landed


def draw_spawns(
    params: CatchParams, idx: np.ndarray, rngs: list[np.random.Generator]
) -> tuple[np.ndarray, np.ndarray]:
    """New balls for the games ``idx``, each from its own generator ``rngs[i]``.

    Returns:
        ``(ball_x, ball_vx)``: int64 ``[len(idx)]`` each, drawn as a single game
        draws them (x, then the speed if ``drift``).

    """
    draws = [_spawn(params, rngs[i]) for i in idx]
    x = np.array([d[0] for d in draws], dtype=np.int64)
    vx = np.array([d[1] for d in draws], dtype=np.int64)
    return x, vx


def spawn_balls(
    params: CatchParams, batch: BatchState, idx: np.ndarray, ball_x: np.ndarray, ball_vx: np.ndarray
) -> None:
    """New balls at the top of the games ``idx``: left edges ``ball_x``, speeds ``ball_vx``."""
    batch.ball_x[idx] = ball_x
    batch.ball_vx[idx] = ball_vx
    batch.ball_y[idx] = params.ball_start_y
    batch.landed[idx] = False


def reset_batch(
    params: CatchParams,
    batch: BatchState,
    idx: np.ndarray,
    rngs: list[np.random.Generator],
    spawns: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Start new games at the indices ``idx`` (in place): the core's one reset.

    Args:
        params: The game.
        batch: The games; those at ``idx`` are overwritten.
        idx: int array of the games to start.
        rngs: One generator per game of the batch; ``rngs[i]`` draws game i's ball.
        spawns: The new balls' ``(ball_x, ball_vx)``, where they were drawn
            already (the vector env draws ahead, with the same numbers); else
            they are drawn from ``rngs`` (:func:`draw_spawns`).

    """
    x, vx = draw_spawns(params, idx, rngs) if spawns is None else spawns
    spawn_balls(params, batch, idx, x, vx)
    batch.paddle_x[idx] = params.paddle_start_x
    batch.balls_left[idx] = params.balls_per_game
    batch.caught[idx] = 0
    batch.missed[idx] = 0


def drift_batch(
    params: CatchParams, x: np.ndarray, vx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Move balls ``vx`` px sideways, bouncing off the side walls: new ``(x, vx)`` arrays.

    A ball crossing a wall is reflected off it. A ball that is already past the
    right wall (``spawn="book"`` puts balls up to ``x = width``) and moves
    further right turns around where it is instead of jumping back across the
    wall; one moving left just keeps moving left.
    """
    m = params.ball_max_x
    nx = x + vx
    left = nx < 0
    right = (nx > m) & (vx > 0)
    nx = np.where(left, -nx, np.where(right, np.where(x <= m, 2 * m - nx, x - vx), nx))
    return nx, np.where(left | right, -vx, vx)


def step_batch(
    params: CatchParams, batch: BatchState, actions: np.ndarray, rngs: list[np.random.Generator]
) -> tuple[np.ndarray, np.ndarray]:
    """Advance N games by one step in place; :func:`step_state` over arrays.

    Args:
        params: The game's geometry and variants.
        batch: The N games; none may be terminal.
        actions: int array ``[N]`` of 0/1/2 (already validated).
        rngs: One generator per game, used when a multi-ball game respawns.

    Returns:
        ``(reward, terminated)``: float32 ``[N]`` and bool ``[N]``.

    """
    if batch.landed.any():
        idx = np.flatnonzero(batch.landed)
        spawn_balls(params, batch, idx, *draw_spawns(params, idx, rngs))
    px = batch.paddle_x + (actions - 1) * params.paddle_speed
    if params.walls == "clamp":  # np.clip, without its Python-level checks (half the time)
        np.minimum(np.maximum(px, 0, out=px), params.paddle_max_x, out=px)
    else:
        px = np.where(px < 0, params.paddle_speed, px)
        px = np.where(px > params.paddle_max_x, params.paddle_max_x - params.paddle_speed, px)
    batch.paddle_x = px
    batch.ball_y += params.ball_speed
    if params.drift:
        batch.ball_x, batch.ball_vx = drift_batch(params, batch.ball_x, batch.ball_vx)
    landed = batch.ball_y >= params.catch_y
    batch.landed = landed
    if not landed.any():  # most steps: nothing is decided (and nothing else changes)
        return np.zeros(len(px), dtype=np.float32), batch.balls_left == 0
    hit = (
        (batch.ball_x < px + params.paddle_width)
        & (px < batch.ball_x + params.ball_size)
        & (batch.ball_y < params.paddle_y + params.paddle_height)
        & (params.paddle_y < batch.ball_y + params.ball_size)
    )
    reward = np.where(landed, np.where(hit, 1.0, -1.0), 0.0).astype(np.float32)
    batch.caught += landed & hit
    batch.missed += landed & ~hit
    batch.balls_left -= landed
    return reward, batch.balls_left == 0
