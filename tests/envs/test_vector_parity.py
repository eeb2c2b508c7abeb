"""The native vector env against Gymnasium's ``SyncVectorEnv`` of the same single env.

Built both ways by ``gymnasium.make_vec`` (``vector_entry_point`` and
``sync``), seeded alike and stepped with the same actions, they must return
the same observations, rewards, flags and infos (keys, ``_key`` masks, dtypes,
``final_obs`` / ``final_info`` in same-step mode), the same frames from
``render()``, and the same after ``reset(options=...)`` and ``close()``.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from test_copies import assert_same  # tests/envs is on sys.path (pytest prepends it)

from catchrl.envs import ENV_IDS, CatchVectorEnv

CASES = [
    ("pixels", {}),
    ("pixels", {"drift": 5, "balls_per_game": 2, "walls": "book", "spawn": "book"}),
    ("state", {"balls_per_game": 3, "drift": 3}),
    ("grid", {}),
    ("grid", {"balls_per_game": 2, "walls": "book"}),
]


MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


def make_both(obs_type: str, mode: str, n: int, **kwargs):
    native = gymnasium.make_vec(
        ENV_IDS[obs_type],
        num_envs=n,
        vectorization_mode="vector_entry_point",
        autoreset_mode=mode,
        **kwargs,
    )
    sync = gymnasium.make_vec(
        ENV_IDS[obs_type],
        num_envs=n,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": MODES[mode]},
        **kwargs,
    )
    assert isinstance(native.unwrapped, CatchVectorEnv)
    return native, sync


def assert_step_equal(mine: tuple, theirs: tuple, where: str) -> None:
    obs, reward, term, trunc, info = mine
    assert_same(obs, theirs[0], f"{where} obs")
    np.testing.assert_array_equal(reward, theirs[1], err_msg=where)  # float32 vs float64
    assert_same(term, theirs[2], f"{where} terminated")
    assert_same(trunc, theirs[3], f"{where} truncated")
    assert_same(info, theirs[4], f"{where} info")


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize(
    ("obs_type", "kwargs"), CASES, ids=[f"{o}-{'variant' if k else 'default'}" for o, k in CASES]
)
def test_native_vector_env_equals_sync_vector_env_infos_included(obs_type, kwargs, mode):
    n = 5
    native, sync = make_both(obs_type, mode, n, **kwargs)
    obs, info = native.reset(seed=3)
    assert_same((obs, info), sync.reset(seed=3), "reset")
    assert sorted(info) == ["_balls_left", "_caught", "_missed", "balls_left", "caught", "missed"]
    steps = 2 * native.unwrapped.params.max_episode_steps + 5
    actions = np.random.default_rng(4).integers(0, 3, size=(steps, n))
    ended = 0
    for t, a in enumerate(actions):
        mine = native.step(a)
        assert_step_equal(mine, sync.step(a), f"step {t}")
        term, info = mine[2], mine[4]
        if term.any():
            ended += int(term.sum())
            where = info["final_info"] if mode == "same_step" else info
            np.testing.assert_array_equal(where["_is_success"], term)
            if mode == "same_step":
                np.testing.assert_array_equal(info["_final_obs"], term)
                np.testing.assert_array_equal(info["_final_info"], term)
                assert "is_success" not in info  # the top level holds the new games' resets
        else:
            assert "final_info" not in info and "is_success" not in info
    assert ended >= n  # every game ended at least once, infos compared on those steps too
    # a reset without a seed goes on with the games' generators, in both
    assert_same(native.reset(), sync.reset(), "reset without a seed")


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_reset_options_equal_sync_vector_env(mode):
    native, sync = make_both("state", mode, 3, drift=4)
    options = {"ball_x": 7, "ball_vx": -2, "paddle_x": 0}
    obs, _ = native.reset(seed=0, options=options)
    assert_same((obs, _), sync.reset(seed=0, options=options), "reset")
    np.testing.assert_array_equal(obs[:, 0], np.float32(7 / 400))
    for t, a in enumerate(np.random.default_rng(0).integers(0, 3, size=(70, 3))):
        assert_step_equal(native.step(a), sync.step(a), f"step {t}")


@pytest.mark.parametrize("obs_type", list(ENV_IDS))
def test_rgb_array_render_equals_sync_vector_env(obs_type):
    native, sync = make_both(obs_type, "next_step", 3, render_mode="rgb_array")
    assert native.render_mode == sync.render_mode == "rgb_array"
    native.reset(seed=1)
    sync.reset(seed=1)
    for a in ([0, 1, 2], [2, 2, 0], [1, 0, 2]):
        native.step(np.array(a))
        sync.step(np.array(a))
        frames = native.render()
        assert isinstance(frames, tuple) and len(frames) == 3
        assert_same(frames, sync.render(), "render")


def test_close_then_reset_equals_sync_vector_env():
    native, sync = make_both("pixels", "next_step", 2)
    for env in (native, sync):
        env.reset(seed=0)
        env.close()
        env.close()
    assert_same(native.reset(seed=5), sync.reset(seed=5), "reset after close")
    a = np.array([2, 0])
    assert_step_equal(native.step(a), sync.step(a), "step after close")


def test_unknown_reset_option_is_refused_by_both_layers():
    native, _ = make_both("state", "next_step", 2)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['reset_mask'\]"):
        native.reset(seed=0, options={"reset_mask": np.ones(2, dtype=bool)})


def test_human_render_mode_is_refused_clearly():
    with pytest.raises(ValueError, match=r"'rgb_array'.*CatchEnv\(render_mode='human'\)"):
        CatchVectorEnv(2, render_mode="human")
