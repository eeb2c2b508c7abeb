import numpy as np
import pytest

from catchrl.evaluation import evaluate, start_seeds, wilson_interval


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(87, 100)
    assert lo == pytest.approx(0.7910, abs=1e-3) and hi == pytest.approx(0.9219, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def _always(action):
    return lambda obs, states: np.full(len(obs), action, dtype=np.int64)


def test_same_games_whatever_the_batch_size():
    a = evaluate(_always(1), games=300, seed=5, num_envs=7, obs_type="state")
    b = evaluate(_always(1), games=300, seed=5, num_envs=300, obs_type="state")
    assert a == b
    c = evaluate(_always(1), games=300, seed=5000, num_envs=300, obs_type="state")
    assert c != a


def test_stay_policy_wins_exactly_the_balls_over_the_paddle():
    """The paddle stays at x=200: a ball at x in [181, 249] is caught (the overlap window)."""
    from catchrl.envs import CatchEnv

    games, seed = 400, 11
    expected = 0
    for j in range(games):
        env = CatchEnv(obs_type="state")
        env.reset(seed=seed + j)
        expected += 181 <= env.state.ball_x <= 249
    result = evaluate(_always(1), games=games, seed=seed, num_envs=64, obs_type="state")
    assert result.wins == expected and result.games == games
    assert result.mean_length == 33.0


def test_every_start_plays_each_ball_start_once():
    """The 381 starts once each: the stay policy catches the 69 of x in [181, 249]."""
    from catchrl.envs import CatchVectorEnv

    result = evaluate(_always(1), games=1000, seed=3, every_start=True, obs_type="state")
    assert (result.games, result.wins) == (381, 69)
    env = CatchVectorEnv(381, obs_type="state")
    env.reset(seed=list(start_seeds(3, obs_type="state")))
    assert env.batch.ball_x.tolist() == list(range(381))
    # fewer games than starts, or drift (the start no longer decides a game): random games
    assert evaluate(_always(1), games=300, every_start=True, obs_type="state").games == 300
    drifting = evaluate(_always(1), games=400, every_start=True, obs_type="state", drift=2)
    assert drifting.games == 400 and start_seeds(3, obs_type="state", drift=2) is None


def test_multi_ball_counts_balls():
    result = evaluate(_always(1), games=10, seed=0, num_envs=5, obs_type="state", balls_per_game=3)
    assert result.games == 30 and result.mean_length == 99.0


def test_bad_games():
    with pytest.raises(ValueError, match="games must be in 1.."):
        evaluate(_always(1), games=0)
