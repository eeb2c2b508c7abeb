"""Scripted policies: exact actions on hand cases, and win rates over 10,000 seeded games."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from catchrl.agents.scripted import OraclePolicy, RandomPolicy, landing_x
from catchrl.envs import BatchState, CatchParams, CatchState, CatchVectorEnv
from tests.envs.test_core import step_state

LEFT, STAY, RIGHT = 0, 1, 2
GAMES = 10_000


def at(ball_x: int, paddle_x: int, ball_y: int = 10, ball_vx: int = 0) -> CatchState:
    return CatchState(
        ball_x=ball_x, ball_y=ball_y, ball_vx=ball_vx, paddle_x=paddle_x, balls_left=1
    )


def as_batch(states: list[CatchState]) -> BatchState:
    return BatchState.of(states)


# --- the interface ----------------------------------------------------------------------------


def test_policies_return_int64_actions_for_batches():
    params = CatchParams()
    batch = as_batch([at(0, 200), at(380, 200), at(215, 200)])
    obs = np.zeros((3, 80, 80, 4), np.uint8)
    for policy in (OraclePolicy(params), RandomPolicy(0)):
        called = policy(obs, batch)
        assert called.dtype == np.int64 and called.shape == (3,)
        assert set(called.tolist()) <= {0, 1, 2}
    np.testing.assert_array_equal(OraclePolicy(params)(obs, batch), [LEFT, RIGHT, STAY])


def test_oracle_needs_the_true_state():
    with pytest.raises(ValueError, match="true game state"):
        OraclePolicy(CatchParams())(np.zeros((2, 3), np.float32), None)


def test_random_policy_is_seeded_and_uniform():
    a = RandomPolicy(3)(np.zeros((30_000, 3)), None)
    np.testing.assert_array_equal(a, RandomPolicy(3)(np.zeros((30_000, 3)), None))
    assert not np.array_equal(a, RandomPolicy(4)(np.zeros((30_000, 3)), None))
    counts = np.bincount(a, minlength=3)
    assert counts.sum() == 30_000 and len(counts) == 3
    sd = math.sqrt(30_000 * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - 10_000) < 4 * sd), counts


# --- the oracle's choices ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("walls", "ball_x", "paddle_x", "action"),
    [
        ("clamp", 300, 200, RIGHT),  # centre under the ball: target 285
        ("clamp", 100, 200, LEFT),  # target 85
        ("clamp", 215, 200, STAY),  # target 200: already there
        ("clamp", 224, 200, STAY),  # target 209: moving gets no closer
        ("clamp", 226, 200, RIGHT),  # target 211: 220 is closer than 200
        ("clamp", 395, 340, RIGHT),  # target 380 -> clamped to 350
        ("clamp", 395, 350, STAY),
        ("clamp", 0, 0, STAY),
        ("book", 395, 340, RIGHT),  # 340 -> 330 (bounce) -> 350: the look-ahead sees past the wall
        ("book", 395, 330, RIGHT),
        ("book", 395, 350, STAY),
        ("book", 0, 0, STAY),  # left from 0 would bounce to 20
        ("book", 0, 20, LEFT),
    ],
)
def test_oracle_actions_hand_checked(walls, ball_x, paddle_x, action):
    policy = OraclePolicy(CatchParams(walls=walls, spawn="book"))
    assert policy.act_state(as_batch([at(ball_x, paddle_x)])).tolist() == [action]


def test_landing_x_hand_computed():
    params = CatchParams(drift=7)
    # From y = 290 the ball has 5 steps left: 367, 374, 381 -> 379 (bounce), 372, 365.
    got = landing_x(params, np.array([360]), np.array([290]), np.array([7]))
    assert got.tolist() == [365]


@pytest.mark.parametrize(
    "params",
    [CatchParams(drift=9), CatchParams.book(drift=4), CatchParams(drift=1, spawn="book")],
    ids=str,
)
def test_landing_x_equals_playing_the_ball_down(params):
    rng = np.random.default_rng(1)
    states = [
        at(
            int(rng.integers(0, params.spawn_max_x + 1)),
            200,
            ball_y=10 + 10 * int(rng.integers(0, 34)),
            ball_vx=int(rng.integers(-params.drift, params.drift + 1)),
        )
        for _ in range(200)
    ]
    batch = as_batch(states)
    predicted = landing_x(params, batch.ball_x, batch.ball_y, batch.ball_vx)
    for s, x in zip(states, predicted, strict=True):
        while s.ball_y < params.landing_y:
            s, _, _ = step_state(params, s, STAY, rng)
        assert s.ball_x == x


# --- win rates over 10,000 seeded games ---------------------------------------------------------


def play(policy_for, games: int = GAMES, seed: int = 2024, **params):
    """Play seeded games on the vector env: (summed rewards [games], ball x at each landing)."""
    env = CatchVectorEnv(games, obs_type="state", **params)
    policy = policy_for(env.params)
    obs, _ = env.reset(seed=seed)
    total = np.zeros(games)
    landing = []
    for _ in range(env.params.max_episode_steps):
        obs, reward, terminated, _, _ = env.step(policy(obs, env.batch))
        total += reward
        if env.batch.landed.all():
            landing.append(env.batch.ball_x.copy())
    assert terminated.all()  # every game ended together (fixed length)
    return total, np.stack(landing)


def binomial_band(p: float, n: int = GAMES, sigmas: float = 4.0) -> float:
    return sigmas * math.sqrt(p * (1 - p) / n)


def test_oracle_wins_every_game_of_the_default_game():
    rewards, _ = play(OraclePolicy)
    assert (rewards == 1).all()  # every ball is catchable by default: 100 %


@pytest.mark.parametrize(
    "params",
    [{"spawn": "book"}, {"spawn": "book", "walls": "book"}],
    ids=["book-spawn", "book-quirks"],
)
def test_oracle_loses_exactly_the_balls_at_x_400(params):
    rewards, landing = play(OraclePolicy, **params)
    lost = rewards < 0
    np.testing.assert_array_equal(lost, landing[0] == 400)  # and wins all the others
    assert abs(lost.mean() - 1 / 401) <= binomial_band(1 / 401)  # best rate: 400/401


@pytest.mark.parametrize(
    "params",
    [
        {"drift": 9},
        {"drift": 5, "walls": "book"},
        {"drift": 3, "balls_per_game": 3},
    ],
)
def test_oracle_wins_every_drifting_ball(params):
    rewards, _ = play(OraclePolicy, games=2000, **params)
    assert (rewards == params.get("balls_per_game", 1)).all()


def test_oracle_wins_bsuite_catch():
    env = CatchVectorEnv(500, obs_type="grid")
    policy = OraclePolicy(env.params)
    obs, _ = env.reset(seed=0)
    for _ in range(9):
        obs, reward, terminated, _, _ = env.step(policy(obs, env.batch))
    assert terminated.all() and (reward == 1).all()


def random_win_rate(params: CatchParams) -> float:
    """Exact win rate of uniform random play (one ball, ``clamp`` walls, no drift).

    The paddle's position after the game's ``steps_per_ball`` moves is a clamped
    random walk; a ball at x is caught by a paddle at p iff
    ``p - ball_size < x < p + paddle_width``, and x is uniform on the spawn range.
    """
    assert params.walls == "clamp" and not params.drift and params.balls_per_game == 1
    dist = {params.paddle_start_x: Fraction(1)}
    for _ in range(params.steps_per_ball):
        nxt: dict[int, Fraction] = {}
        for x, p in dist.items():
            for move in (-params.paddle_speed, 0, params.paddle_speed):
                y = min(max(x + move, 0), params.paddle_max_x)
                nxt[y] = nxt.get(y, Fraction(0)) + p / 3
        dist = nxt
    spawns = params.spawn_max_x + 1
    win = Fraction(0)
    for x, p in dist.items():
        lo, hi = (
            max(x - params.ball_size + 1, 0),
            min(x + params.paddle_width - 1, params.spawn_max_x),
        )
        win += p * Fraction(hi - lo + 1, spawns)
    return float(win)


def test_random_win_rate_derivation_hand_checked():
    # A one-step game: the paddle moves once from 200 to 180, 200 or 220, and each of
    # those catches the 69 ball positions p - 19 .. p + 49 of the 381 spawn positions.
    one_step = CatchParams(ball_start_y=330)
    assert random_win_rate(one_step) == pytest.approx(69 / 381)
    assert random_win_rate(CatchParams()) == pytest.approx(0.178365, abs=1e-6)


@pytest.mark.parametrize("params", [{}, {"spawn": "book"}], ids=["default", "book-spawn"])
def test_random_policy_wins_about_17_percent(params):
    expected = random_win_rate(CatchParams(**params))
    assert 0.17 < expected < 0.18  # the book's "about 17 %"
    rewards, _ = play(lambda _: RandomPolicy(seed=7), **params)
    assert set(np.unique(rewards)) <= {-1.0, 1.0}
    measured = (rewards > 0).mean()
    assert abs(measured - expected) <= binomial_band(expected), (measured, expected)
