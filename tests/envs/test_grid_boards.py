"""The vector env's incremental grid boards equal the plain ``grid_boards``, cell for cell."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from catchrl.envs import CatchVectorEnv
from catchrl.envs.core import CatchParams
from catchrl.envs.observations import GridBoards, grid_boards

GAMES = {
    "bsuite": CatchParams.bsuite(),
    "bsuite, book spawn (balls off the board)": CatchParams.bsuite(spawn="book"),
    "big ball and paddle": CatchParams.bsuite(
        width=7, ball_size=2, paddle_width=3, paddle_height=2, paddle_y=8, catch_y=8
    ),
    "big ball, book spawn, drift": CatchParams.bsuite(
        width=9, ball_size=3, paddle_width=2, catch_y=7, spawn="book", drift=2
    ),
}


def _positions(p: CatchParams, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Any positions the game can reach (left edges up to ``spawn_max_x``, a ball's rows)."""
    bx = rng.integers(0, p.spawn_max_x + 1, size=n)
    by = rng.integers(p.ball_start_y, p.landing_y + 1, size=n)
    px = rng.integers(0, p.paddle_max_x + 1, size=n)
    return bx, by, px


@pytest.mark.parametrize("name", list(GAMES))
def test_incremental_boards_equal_plain_boards_after_any_moves(name):
    p, n = GAMES[name], 33
    boards, rng = GridBoards(p, n), np.random.default_rng(5)
    bx, by, px = _positions(p, rng, n)
    for t in range(60):
        if t % 3:  # some games move a little, the others jump anywhere
            jump = rng.random(n) < 0.3
            new = _positions(p, rng, n)
            bx, by, px = (np.where(jump, b, a) for a, b in zip((bx, by, px), new, strict=True))
        out = boards.draw(bx, by, px)
        assert out is boards.boards and out.dtype == np.float32
        np.testing.assert_array_equal(out, grid_boards(p, bx, by, px), err_msg=f"step {t}")
    if p.spawn == "book":  # the draws above did put balls off the board
        assert (bx + p.ball_size > p.width).any()


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("copy_obs", [True, False])
@pytest.mark.parametrize("name", list(GAMES))
def test_vector_env_grid_equals_plain_boards_of_its_state(name, mode, copy_obs):
    """Played games (restarts, multi-ball respawns, a restored snapshot, a deep copy).

    ``final_obs`` of same-step games: the parity tests against single envs.
    """
    p, n = GAMES[name], 16
    p = CatchParams(**{**p.__dict__, "balls_per_game": 2})
    env = CatchVectorEnv(n, obs_type="grid", params=p, autoreset_mode=mode, copy=copy_obs)
    obs, _ = env.reset(seed=3)
    actions = np.random.default_rng(0).integers(0, 3, size=(3 * p.max_episode_steps, n))
    snapshot = None
    for t, a in enumerate(actions):
        b = env.batch
        np.testing.assert_array_equal(obs, grid_boards(p, b.ball_x, b.ball_y, b.paddle_x))
        if t == 5:
            snapshot = env.get_state()
        if t == 11:
            twin = copy.deepcopy(env)
        obs = env.step(a)[0]
    b = env.batch
    np.testing.assert_array_equal(obs, grid_boards(p, b.ball_x, b.ball_y, b.paddle_x))
    restored = env.set_state(snapshot)
    b = env.batch
    np.testing.assert_array_equal(restored, grid_boards(p, b.ball_x, b.ball_y, b.paddle_x))
    for a in actions[:9]:
        mine = twin.step(a)[0]
        tb = twin.batch
        np.testing.assert_array_equal(mine, grid_boards(p, tb.ball_x, tb.ball_y, tb.paddle_x))


def test_copy_false_returns_the_env_buffer_and_copy_true_a_fresh_array():
    fast = CatchVectorEnv(4, obs_type="grid", copy=False)
    plain = CatchVectorEnv(4, obs_type="grid")
    a, _ = fast.reset(seed=0)
    b, _ = plain.reset(seed=0)
    assert a is fast.step(np.ones(4, dtype=np.int64))[0]
    assert b is not plain.step(np.ones(4, dtype=np.int64))[0]
