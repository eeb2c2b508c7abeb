"""The registered ids: ``gymnasium.make``, Gymnasium's and SB3's env checkers, light imports."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import catchrl.envs
from catchrl.envs import ENV_IDS, CatchEnv

IDS = list(ENV_IDS.values())


@pytest.mark.parametrize(
    ("obs_type", "expected"),
    [
        ("pixels", ((80, 80, 4), np.uint8)),
        ("state", ((3,), np.float32)),
        ("grid", ((10, 5), np.float32)),
    ],
)
def test_registered_ids_make_the_right_env(obs_type, expected):
    env = gymnasium.make(ENV_IDS[obs_type])
    assert isinstance(env.unwrapped, CatchEnv)
    assert env.unwrapped.obs_type == obs_type
    assert (env.observation_space.shape, env.observation_space.dtype) == expected
    assert env.action_space == gymnasium.spaces.Discrete(3)
    assert env.spec.vector_entry_point == "catchrl.envs.vector:CatchVectorEnv"
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_make_passes_game_parameters_and_keeps_truncation_separate():
    env = gymnasium.make("catchrl/CatchState-v0", drift=3, balls_per_game=3, max_episode_steps=10)
    assert env.unwrapped.params.drift == 3
    env.reset(seed=0)
    for t in range(10):
        _, _, term, trunc, _ = env.step(1)
        assert not term
        assert trunc == (t == 9)  # the time limit truncates; the game did not end


def recorded_warnings(fn, *args, **kwargs) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("env_name", IDS)
def test_gymnasium_check_env_passes_without_warnings(env_name):
    env = gymnasium.make(env_name)
    assert recorded_warnings(check_env, env.unwrapped, skip_render_check=False) == []
    env.close()


@pytest.mark.parametrize("env_name", IDS)
def test_sb3_check_env_passes_without_image_or_dtype_warnings(env_name):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = gymnasium.make(env_name)
    messages = recorded_warnings(sb3_checker.check_env, env, warn=True)
    if env_name == ENV_IDS["grid"]:
        # bsuite's 10 x 5 board is neither an image nor a vector: the one expected remark.
        assert len(messages) == 1 and "unconventional shape" in messages[0], messages
    else:
        assert messages == []
    env.close()


def test_registration_is_idempotent():
    import importlib

    importlib.reload(catchrl)
    importlib.reload(catchrl.envs)
    assert all(i in gymnasium.registry for i in IDS)
