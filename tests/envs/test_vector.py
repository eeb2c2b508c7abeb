"""``CatchVectorEnv`` plays exactly what N single ``CatchEnv`` with seeds seed + i play."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import catchrl.envs  # noqa: F401 - registers the ids
from catchrl.envs import ENV_IDS, CatchEnv, CatchVectorEnv

CASES = [
    ("pixels", {}),
    ("pixels", {"drift": 5, "balls_per_game": 2, "walls": "book", "spawn": "book"}),
    ("state", {}),
    ("state", {"drift": 7, "balls_per_game": 3, "spawn": "book"}),
    ("grid", {}),
    ("grid", {"balls_per_game": 2, "walls": "book"}),
]


class Singles:
    """N single envs driven the way the vector env autoresets."""

    def __init__(self, n: int, obs_type: str, kwargs: dict) -> None:
        self.envs = [CatchEnv(obs_type, **kwargs) for _ in range(n)]
        self.done = np.zeros(n, dtype=bool)

    def reset(self, seed: int) -> np.ndarray:
        self.done[:] = False
        return np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(self.envs)])


def assert_vector_matches_singles(obs_type: str, kwargs: dict, mode: str, n: int = 6) -> int:
    """Play several games on both sides; returns how many games ended."""
    vec = CatchVectorEnv(n, obs_type=obs_type, autoreset_mode=mode, **kwargs)
    singles = Singles(n, obs_type, kwargs)
    seed = 77
    obs, infos = vec.reset(seed=seed)
    np.testing.assert_array_equal(obs, singles.reset(seed))
    steps = 2 * vec.params.max_episode_steps + 7
    actions = np.random.default_rng(1).integers(0, 3, size=(steps, n))
    ended = 0
    for t in range(steps):
        obs, reward, term, trunc, infos = vec.step(actions[t])
        assert obs.dtype == vec.single_observation_space.dtype
        assert reward.dtype == np.float32 and term.dtype == bool and not trunc.any()
        for i, env in enumerate(singles.envs):
            if singles.done[i]:  # next_step: this step starts the next game, action ignored
                o, r, te = env.reset()[0], 0.0, False
                singles.done[i] = False
            else:
                o, r, te, tr, _ = env.step(int(actions[t, i]))
                assert not tr
            assert (float(reward[i]), bool(term[i])) == (r, te), (t, i)
            if mode == "same_step" and te:
                np.testing.assert_array_equal(infos["final_obs"][i], o)
                assert infos["_final_obs"][i]
                o = env.reset()[0]
            elif mode == "next_step":
                singles.done[i] = te
            np.testing.assert_array_equal(obs[i], o, err_msg=f"step {t}, game {i}")
            assert vec.batch.get(i) == env.state
        if mode == "same_step" and not term.any():
            assert "final_obs" not in infos
        ended += int(term.sum())
    return ended


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize(
    ("obs_type", "kwargs"), CASES, ids=[f"{o}-{'variant' if k else 'book'}" for o, k in CASES]
)
def test_vector_env_equals_single_envs(obs_type, kwargs, mode):
    n = 6
    assert assert_vector_matches_singles(obs_type, kwargs, mode, n) == 2 * n


@pytest.mark.parametrize("obs_type", list(ENV_IDS))
def test_make_vec_builds_the_native_vector_env(obs_type):
    env_id = ENV_IDS[obs_type]
    vec = gymnasium.make_vec(env_id, num_envs=64, vectorization_mode="vector_entry_point")
    assert isinstance(vec.unwrapped, CatchVectorEnv)
    assert vec.num_envs == 64
    single = gymnasium.make(env_id)
    assert vec.single_observation_space == single.observation_space
    assert vec.single_action_space == single.action_space
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (64, *single.observation_space.shape)
    assert vec.observation_space.contains(obs)
    single_obs, _ = single.reset(seed=63)
    np.testing.assert_array_equal(obs[63], single_obs)
    obs, reward, term, trunc, _ = vec.step(np.full(64, 2))
    assert obs.shape[0] == reward.shape[0] == term.shape[0] == trunc.shape[0] == 64
    vec.close()


def test_make_vec_passes_game_parameters():
    vec = gymnasium.make_vec(
        "catchrl/CatchState-v0",
        num_envs=4,
        vectorization_mode="vector_entry_point",
        drift=3,
        balls_per_game=2,
    )
    assert vec.unwrapped.params.drift == 3 and vec.unwrapped.params.balls_per_game == 2
    assert vec.single_observation_space.shape == (4,)


def test_reset_with_a_list_of_seeds():
    vec = CatchVectorEnv(3, obs_type="state")
    obs, _ = vec.reset(seed=[10, 20, 30])
    for i, s in enumerate((10, 20, 30)):
        np.testing.assert_array_equal(obs[i], CatchEnv("state").reset(seed=s)[0])


def test_copy_false_returns_the_env_buffer():
    vec = CatchVectorEnv(2, obs_type="pixels", copy=False)
    a, _ = vec.reset(seed=0)
    b = vec.step(np.ones(2, dtype=np.int64))[0]
    assert a is b
    fresh = CatchVectorEnv(2, obs_type="pixels")
    c, _ = fresh.reset(seed=0)
    assert c is not fresh.step(np.ones(2, dtype=np.int64))[0]


@pytest.mark.parametrize(
    ("actions", "error", "match"),
    [
        (np.array([0, 1, 3]), ValueError, r"\[3\]"),
        (np.array([0, -1, 1]), ValueError, r"\[-1\]"),
        (np.array([0.0, 1.0, 2.0]), TypeError, "float"),
        (np.array([0, 1]), ValueError, r"shape \(3,\)"),
        (1, ValueError, "shape"),
        (["0", "1", "2"], TypeError, "dtype"),
    ],
)
def test_bad_actions_are_refused_clearly(actions, error, match):
    vec = CatchVectorEnv(3, obs_type="state")
    vec.reset(seed=0)
    with pytest.raises(error, match=match):
        vec.step(actions)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_envs": 0}, ValueError, "num_envs"),
        ({"obs_type": "rgb"}, ValueError, "obs_type"),
        ({"autoreset_mode": "sometimes"}, ValueError, "sometimes"),
        ({"render_mode": "human"}, ValueError, "render"),
        ({"paddle_sped": 3}, TypeError, "paddle_sped"),
        ({"walls": "x"}, ValueError, "walls"),
        ({"frame_stack": 0}, ValueError, "frame_stack"),
    ],
)
def test_bad_construction_is_refused_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        CatchVectorEnv(**kwargs)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_autoreset_mode_may_be_gymnasiums_enum(mode):
    vec = CatchVectorEnv(2, obs_type="state", autoreset_mode=mode)
    assert vec.metadata["autoreset_mode"] == mode


def test_step_before_reset_is_refused():
    vec = CatchVectorEnv(2, obs_type="state")
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.ones(2, dtype=np.int64))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"obs_type": "pixels"},
        {"obs_type": "pixels", "drift": 5, "balls_per_game": 3},
        {"obs_type": "pixels", "frame_stack": 3, "frame_size": 40},
        {"obs_type": "pixels", "frame_stack": 9},
        {"obs_type": "state", "drift": 3},
        {"obs_type": "grid"},
    ],
)
@pytest.mark.parametrize("mode", ["same_step", "next_step"])
def test_a_snapshot_taken_mid_game_continues_exactly(kwargs, mode):
    """get_state anywhere (mid-game, mid-stack) + set_state on a fresh env = the same future."""
    rng = np.random.default_rng(7)
    for split in (1, 2, 17, 40, 75):
        env = CatchVectorEnv(5, autoreset_mode=mode, **kwargs)
        last, _ = env.reset(seed=11)
        for _ in range(split):
            last = env.step(rng.integers(0, 3, size=5))[0]
        snap = env.get_state()
        copy = CatchVectorEnv(5, autoreset_mode=mode, **kwargs)
        np.testing.assert_array_equal(copy.set_state(snap), last)  # what the agent acts on
        for _ in range(70):
            a = rng.integers(0, 3, size=5)
            o1, r1, t1, u1, i1 = env.step(a)
            o2, r2, t2, u2, i2 = copy.step(a)
            np.testing.assert_array_equal(o1, o2)
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(t1, t2)
            np.testing.assert_array_equal(u1, u2)
            assert sorted(i1) == sorted(i2)
