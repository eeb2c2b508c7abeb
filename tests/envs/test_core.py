"""The pure game core: the book's rules on hand-computed cases; N games are N games of one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from catchrl.envs.core import (
    ACTION_LEFT,
    ACTION_RIGHT,
    ACTION_STAY,
    BatchState,
    CatchParams,
    CatchState,
    reset_batch,
    step_batch,
)

BOOK = CatchParams()


def reset_state(params: CatchParams, rng: np.random.Generator) -> CatchState:
    """One new game: :func:`reset_batch` of one."""
    return reset_batch(params, [rng]).get(0)


def step_state(
    params: CatchParams, state: CatchState, action: int, rng: np.random.Generator
) -> tuple[CatchState, float, bool]:
    """One game one step: :func:`step_batch` of one; ``(next_state, reward, terminated)``."""
    nxt, reward, terminated = step_batch(params, BatchState.of([state]), np.array([action]), [rng])
    return nxt.get(0), float(reward[0]), bool(terminated[0])


def before_landing(
    ball_x: int, paddle_x: int, *, ball_vx: int = 0, balls_left: int = 1, params: CatchParams = BOOK
) -> CatchState:
    """A state one step before the ball is decided (book: ball top edge at y = 330)."""
    return CatchState(
        ball_x=ball_x,
        ball_y=params.landing_y - params.ball_speed,
        ball_vx=ball_vx,
        paddle_x=paddle_x,
        balls_left=balls_left,
    )


def step(
    state: CatchState, action: int = ACTION_STAY, params: CatchParams = BOOK, seed: int = 0
) -> tuple[CatchState, float, bool]:
    return step_state(params, state, action, np.random.default_rng(seed))


def step_among_others(
    state: CatchState, action: int, params: CatchParams = BOOK, seed: int = 0
) -> tuple[CatchState, float, bool]:
    """Step ``state`` as game 1 of three (the others one step from landing, or landed)."""
    landed = dataclasses.replace(before_landing(3, 0, params=params), landed=True)
    batch = BatchState.of([before_landing(0, 0, params=params), state, landed])
    rngs = [np.random.default_rng(seed + k) for k in (7, 0, 8)]  # game 1's: seed, as step's
    nxt, reward, term = step_batch(params, batch, np.array([2, action, 0]), rngs)
    return nxt.get(1), float(reward[1]), bool(term[1])


BOTH_STEPPERS = pytest.mark.parametrize(
    "stepper", [step, step_among_others], ids=["one", "among-others"]
)


# --- the book's numbers -----------------------------------------------------------


def test_book_geometry_gives_33_steps_and_landing_at_340():
    assert BOOK.steps_per_ball == 33  # (340 - 10) / 10
    assert BOOK.landing_y == 340
    assert BOOK.max_episode_steps == 33
    assert CatchParams(balls_per_game=3).max_episode_steps == 99
    assert (BOOK.paddle_max_x, BOOK.spawn_max_x) == (350, 380)
    assert CatchParams(spawn="book").spawn_max_x == 400


def test_presets():
    book = CatchParams.book()
    assert (book.walls, book.spawn) == ("book", "book")
    assert CatchParams.book(drift=2).drift == 2
    bs = CatchParams.bsuite()
    assert (bs.width, bs.height, bs.steps_per_ball, bs.landing_y) == (5, 10, 9, 9)


def test_reset_state_draws_one_integer_from_the_generator():
    rng, twin = np.random.default_rng(7), np.random.default_rng(7)
    s = reset_state(BOOK, rng)
    expected_x = int(twin.integers(0, 381))
    assert s == CatchState(ball_x=expected_x, ball_y=10, ball_vx=0, paddle_x=200, balls_left=1)


def test_reset_batch_draws_each_game_from_its_own_generator():
    params = CatchParams(drift=4, balls_per_game=3, spawn="book")
    for seed in range(20):
        rngs = [np.random.default_rng(seed + i) for i in range(3)]
        batch = reset_batch(params, rngs)
        twin, scalar = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
        assert reset_state(params, scalar) == batch.get(1)
        assert scalar.integers(1 << 30) == rngs[1].integers(1 << 30)  # as many draws
        x, vx = int(twin.integers(0, 401)), int(twin.integers(-4, 5))  # x first, then the speed
        assert batch.get(1) == CatchState(x, 10, vx, 200, balls_left=3)


def test_step_batch_leaves_its_input_alone():
    params = CatchParams(balls_per_game=2, drift=3)
    rngs = [np.random.default_rng(i) for i in range(4)]
    state = reset_batch(params, rngs)
    before = [state.get(i) for i in range(4)]
    for _ in range(params.steps_per_ball + 1):  # a landing and a respawn included
        nxt, _, _ = step_batch(params, state, np.array([0, 1, 2, 1]), rngs)
        assert [state.get(i) for i in range(4)] == before
        state, before = nxt, [nxt.get(i) for i in range(4)]


# --- catching: the overlap window ---------------------------------------------------


@BOTH_STEPPERS
@pytest.mark.parametrize(
    ("offset", "reward"),
    [
        (-20, -1.0),  # ball's right edge touches the paddle's left edge: a miss by one pixel
        (-19, 1.0),
        (0, 1.0),
        (15, 1.0),  # centred
        (49, 1.0),
        (50, -1.0),  # ball's left edge touches the paddle's right edge: a miss by one pixel
        (-200, -1.0),
    ],
)
def test_catch_window_edges(stepper, offset, reward):
    paddle_x = 150
    nxt, r, terminated = stepper(before_landing(paddle_x + offset, paddle_x), ACTION_STAY)
    assert r == reward
    assert terminated
    assert (nxt.ball_y, nxt.paddle_x, nxt.landed, nxt.balls_left) == (340, 150, True, 0)
    assert (nxt.caught, nxt.missed) == ((1, 0) if reward > 0 else (0, 1))


@BOTH_STEPPERS
def test_paddle_moves_before_the_outcome_is_checked(stepper):
    # Ball at 200 misses a paddle at 150 (150 + 49 = 199) ...
    assert stepper(before_landing(200, 150), ACTION_STAY)[1] == -1.0
    # ... but the landing step's own move counts: 170 + 49 >= 200.
    nxt, r, _ = stepper(before_landing(200, 150), ACTION_RIGHT)
    assert (r, nxt.paddle_x) == (1.0, 170)
    # And moving away on the landing step loses a ball that was under the paddle.
    nxt, r, _ = stepper(before_landing(131, 150), ACTION_RIGHT)
    assert (r, nxt.paddle_x) == (-1.0, 170)


def test_a_whole_game_is_33_steps_with_reward_only_on_the_last():
    rng = np.random.default_rng(3)
    state = reset_state(BOOK, rng)
    ball_x = state.ball_x
    rewards, ys = [], []
    for t in range(33):
        state, r, terminated = step_state(BOOK, state, ACTION_STAY, rng)
        rewards.append(r)
        ys.append(state.ball_y)
        assert terminated == (t == 32)
        assert state.ball_x == ball_x  # no drift: straight down
    assert ys == list(range(20, 341, 10))
    assert rewards[:32] == [0.0] * 32
    # Paddle stayed at 200: catches exactly the balls at x in [181, 249].
    assert rewards[32] == (1.0 if 181 <= ball_x <= 249 else -1.0)


# --- walls ----------------------------------------------------------------------------


@BOTH_STEPPERS
@pytest.mark.parametrize(
    ("walls", "paddle_x", "action", "expected"),
    [
        ("clamp", 0, ACTION_LEFT, 0),
        ("clamp", 10, ACTION_LEFT, 0),
        ("clamp", 20, ACTION_LEFT, 0),
        ("clamp", 350, ACTION_RIGHT, 350),
        ("clamp", 340, ACTION_RIGHT, 350),
        ("clamp", 330, ACTION_RIGHT, 350),
        ("clamp", 310, ACTION_RIGHT, 330),
        ("book", 0, ACTION_LEFT, 20),  # past the left wall -> one step in from it
        ("book", 10, ACTION_LEFT, 20),
        ("book", 20, ACTION_LEFT, 0),  # reaching the wall is not passing it
        ("book", 340, ACTION_RIGHT, 330),  # 360 > 350 -> one step in from the right wall
        ("book", 350, ACTION_RIGHT, 330),
        ("book", 330, ACTION_RIGHT, 350),
        ("book", 0, ACTION_STAY, 0),
        ("book", 350, ACTION_STAY, 350),
    ],
)
def test_walls(stepper, walls, paddle_x, action, expected):
    params = CatchParams(walls=walls)
    state = CatchState(ball_x=100, ball_y=10, ball_vx=0, paddle_x=paddle_x, balls_left=1)
    assert stepper(state, action, params)[0].paddle_x == expected


# --- drift ------------------------------------------------------------------------------


@BOTH_STEPPERS
@pytest.mark.parametrize(
    ("spawn", "x", "vx", "x_next", "vx_next"),
    [
        ("visible", 100, 5, 105, 5),
        ("visible", 100, -5, 95, -5),
        ("visible", 5, -5, 0, -5),  # touching the left wall is not a bounce
        ("visible", 2, -5, 3, 5),  # -3 reflected off x = 0
        ("visible", 0, -5, 5, 5),
        ("visible", 375, 5, 380, 5),  # touching the right wall (380 = 400 - 20)
        ("visible", 378, 5, 377, -5),  # 383 reflected off 380: 760 - 383
        ("visible", 380, 5, 375, -5),
        # spawn="book" puts balls past the right wall; they never jump back across it.
        ("book", 395, -5, 390, -5),
        ("book", 400, -5, 395, -5),
        ("book", 400, 5, 395, -5),  # turns around where it is
        ("book", 383, 4, 379, -4),
    ],
)
def test_drift_bounces_off_the_side_walls(stepper, spawn, x, vx, x_next, vx_next):
    params = CatchParams(drift=5, spawn=spawn)
    state = CatchState(ball_x=x, ball_y=10, ball_vx=vx, paddle_x=200, balls_left=1)
    nxt = stepper(state, ACTION_STAY, params)[0]
    assert (nxt.ball_x, nxt.ball_vx, nxt.ball_y) == (x_next, vx_next, 20)


def test_drift_path_over_a_whole_fall_hand_computed():
    params = CatchParams(drift=7)
    state = CatchState(ball_x=360, ball_y=10, ball_vx=7, paddle_x=200, balls_left=1)
    xs = []
    for _ in range(6):
        state, _, _ = step(state, ACTION_STAY, params)
        xs.append((state.ball_x, state.ball_vx))
    # 367, 374, 381 -> 379 (bounce), 372, 365, 358
    assert xs == [(367, 7), (374, 7), (379, -7), (372, -7), (365, -7), (358, -7)]


# --- spawns -------------------------------------------------------------------------------


@pytest.mark.parametrize(("spawn", "high"), [("visible", 380), ("book", 400)])
def test_spawn_ranges(spawn, high):
    params = CatchParams(spawn=spawn, drift=3)
    rng = np.random.default_rng(0)
    starts = [reset_state(params, rng) for _ in range(20_000)]
    xs = np.array([s.ball_x for s in starts])
    vxs = np.array([s.ball_vx for s in starts])
    assert xs.min() == 0
    assert xs.max() == high  # both ends of the inclusive range are drawn
    assert len(np.unique(xs)) == high + 1
    assert set(vxs.tolist()) == {-3, -2, -1, 0, 1, 2, 3}
    assert {s.ball_y for s in starts} == {10}


def test_a_ball_at_x_400_can_never_be_caught_but_399_can():
    params = CatchParams(spawn="book")
    for paddle_x in range(0, 351):
        assert step(before_landing(400, paddle_x, params=params), ACTION_STAY, params)[1] == -1
    assert step(before_landing(399, 350, params=params), ACTION_STAY, params)[1] == 1.0


# --- several balls per game ----------------------------------------------------------------


def test_multi_ball_game_hand_checked():
    params = CatchParams(balls_per_game=3)
    rng, twin = np.random.default_rng(11), np.random.default_rng(11)
    state = reset_state(params, rng)
    assert state.ball_x == int(twin.integers(0, 381))
    assert state.balls_left == 3
    rewards, terms, landed_steps = [], [], []
    for t in range(99):
        before = state
        state, r, terminated = step_state(params, state, ACTION_STAY, rng)
        rewards.append(r)
        terms.append(terminated)
        if before.landed:  # the step after a landing respawns from the generator
            assert state.ball_x == int(twin.integers(0, 381))
            assert state.ball_y == 20  # spawned at 10, fell 10 in the same step
            assert (r, state.landed) == (0.0, False)
        if state.landed:
            landed_steps.append(t + 1)
    assert landed_steps == [33, 66, 99]
    assert terms == [False] * 98 + [True]
    assert [t + 1 for t, r in enumerate(rewards) if r != 0] == [33, 66, 99]
    assert state.caught == rewards.count(1.0)
    assert state.missed == rewards.count(-1.0)
    assert (state.caught + state.missed, state.balls_left, state.balls_played) == (3, 0, 3)


@BOTH_STEPPERS
def test_multi_ball_counts_on_the_landing_step(stepper):
    params = CatchParams(balls_per_game=3)
    state = dataclasses.replace(
        before_landing(160, 150, balls_left=2, params=params), caught=0, missed=1
    )
    nxt, r, terminated = stepper(state, ACTION_STAY, params)
    assert (r, terminated) == (1.0, False)
    assert (nxt.caught, nxt.missed, nxt.balls_left, nxt.landed) == (1, 1, 1, True)


# --- N games == N games of one ----------------------------------------------------------

VARIANTS = {
    "book": CatchParams(),
    "book-quirks": CatchParams.book(),
    "drift": CatchParams(drift=9),
    "drift-book": CatchParams.book(drift=6, balls_per_game=3),
    "multi": CatchParams(balls_per_game=4, paddle_speed=30),
    "odd": CatchParams(
        width=97,
        height=60,
        ball_size=7,
        ball_start_y=3,
        ball_speed=4,
        paddle_width=13,
        paddle_height=5,
        paddle_y=50,
        paddle_start_x=9,
        paddle_speed=6,
        catch_y=41,
        drift=3,
        walls="book",
        spawn="book",
    ),
    "bsuite": CatchParams.bsuite(balls_per_game=2),
}


def random_states(params: CatchParams, n: int, rng: np.random.Generator) -> list[CatchState]:
    """Arbitrary mid-game states (off-grid paddle positions and landed balls included)."""
    states = []
    for _ in range(n):
        k = int(rng.integers(0, params.steps_per_ball + 1))
        landed = k == params.steps_per_ball
        balls_left = int(rng.integers(1 if not landed else 0, params.balls_per_game + 1))
        if landed and balls_left == 0:
            balls_left = 1
        states.append(
            CatchState(
                ball_x=int(rng.integers(0, params.spawn_max_x + 1)),
                ball_y=params.ball_start_y + k * params.ball_speed,
                ball_vx=int(rng.integers(-params.drift, params.drift + 1)),
                paddle_x=int(rng.integers(0, params.paddle_max_x + 1)),
                balls_left=balls_left,
                caught=int(rng.integers(0, 3)),
                missed=int(rng.integers(0, 3)),
                landed=landed,
            )
        )
    return states


@pytest.mark.parametrize("name", list(VARIANTS))
def test_step_batch_equals_step_state_on_random_states(name):
    params = VARIANTS[name]
    rng = np.random.default_rng(42)
    n = 400
    states = random_states(params, n, rng)
    actions = rng.integers(0, 3, size=n)
    batch = BatchState.of(states)
    rngs = [np.random.default_rng(i) for i in range(n)]
    batch, reward, term = step_batch(params, batch, actions, rngs)
    assert reward.dtype == np.float32 and term.dtype == bool
    for i, s in enumerate(states):
        nxt, r, t = step_state(params, s, int(actions[i]), np.random.default_rng(i))
        assert batch.get(i) == nxt, (s, int(actions[i]))
        assert (float(reward[i]), bool(term[i])) == (r, t)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_batch_and_scalar_games_agree_over_many_steps(name):
    params = VARIANTS[name]
    n, steps = 64, 3 * params.max_episode_steps + 5
    rngs_b = [np.random.default_rng(1000 + i) for i in range(n)]
    rngs_s = [np.random.default_rng(1000 + i) for i in range(n)]
    batch = reset_batch(params, rngs_b)
    states = [reset_state(params, r) for r in rngs_s]
    actions = np.random.default_rng(5).integers(0, 3, size=(steps, n))
    total_b, total_s = np.zeros(n), np.zeros(n)
    for t in range(steps):
        batch, reward, term = step_batch(params, batch, actions[t], rngs_b)
        total_b += reward
        for i in range(n):
            states[i], r, done = step_state(params, states[i], int(actions[t, i]), rngs_s[i])
            total_s[i] += r
            assert done == term[i]
            if done:
                states[i] = reset_state(params, rngs_s[i])
        done = np.flatnonzero(term)
        batch = batch.merge(done, reset_batch(params, [rngs_b[i] for i in done]))
        assert [batch.get(i) for i in range(n)] == states
    np.testing.assert_array_equal(total_b, total_s)
    assert np.abs(total_b).sum() > 0


def test_batch_state_of_get_round_trip():
    s = CatchState(
        ball_x=1, ball_y=2, ball_vx=-3, paddle_x=4, balls_left=5, caught=6, missed=7, landed=True
    )
    b = BatchState.of([CatchState(0, 0, 0, 0, 0), s])
    assert b.get(1) == s
    assert b.get(0) == CatchState(0, 0, 0, 0, 0)
    assert all(
        getattr(b, f.name).dtype == (bool if f.name == "landed" else np.int64)
        for f in dataclasses.fields(b)
    )


# --- bad parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"width": 0}, ValueError, "width must be > 0"),
        ({"ball_size": -1}, ValueError, "ball_size must be > 0"),
        ({"paddle_speed": 0}, ValueError, "paddle_speed"),
        ({"balls_per_game": 0}, ValueError, "balls_per_game"),
        ({"drift": -1}, ValueError, "drift must be >= 0"),
        ({"walls": "wrap"}, ValueError, "walls must be one of"),
        ({"spawn": "anywhere"}, ValueError, "spawn must be one of"),
        ({"width": 400.0}, TypeError, "width must be an int"),
        ({"drift": True}, TypeError, "drift must be an int"),
        ({"paddle_start_x": 351}, ValueError, "past the right wall"),
        ({"catch_y": 395}, ValueError, "below the world"),
        ({"catch_y": 10}, ValueError, "must lie below ball_start_y"),
        ({"walls": "book", "paddle_speed": 351}, ValueError, "must not exceed width - paddle"),
        (
            {"walls": "book", "paddle_width": 400, "paddle_start_x": 0},
            ValueError,
            "must not exceed width - paddle",
        ),
        ({"drift": 200}, ValueError, "drift is too large"),
        ({"paddle_width": 401}, ValueError, "must not exceed width"),
    ],
)
def test_bad_params_raise_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        CatchParams(**kwargs)
