"""The registered ids and ``gymnasium.make`` (the env checkers: test_gym_conventions.py)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

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


def test_registration_is_idempotent():
    import importlib

    importlib.reload(catchrl)
    importlib.reload(catchrl.envs)
    assert all(i in gymnasium.registry for i in IDS)
