"""Copies are exact: ``copy.deepcopy``, ``pickle`` and ``AsyncVectorEnv`` continue as the original.

A copy is taken anywhere (mid-game, mid-stack, right after a game ended), then
the copy and the original are driven side by side with the same actions; every
observation, reward, flag and info must be equal, step for step, for every
observation type and variant. Driving them side by side also catches a copy
that still shares an array with its original.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import gymnasium
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catchrl.envs import ENV_IDS, CatchEnv, CatchVectorEnv

COPIERS = {"deepcopy": copy.deepcopy, "pickle": lambda env: pickle.loads(pickle.dumps(env))}


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Exact equality of observations, rewards, flags and (nested) infos."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (where, sorted(a), sorted(b))
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and b.dtype == object and a.shape == b.shape, where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, (where, a.dtype, b)
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


class Driver:
    """Plays one single env; after a game ends, ``reset()`` (no seed: the generator goes on)."""

    def __init__(self, env: gymnasium.Env, ended: bool = False) -> None:
        self.env, self.ended = env, ended

    def act(self, action: int) -> tuple:
        if self.ended:
            self.ended = False
            return self.env.reset()
        out = self.env.step(action)
        self.ended = out[2] or out[3]
        return out


@st.composite
def single_envs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An observation type and a variant of the game (and of the frames, for pixels)."""
    obs_type = draw(st.sampled_from(["pixels", "state", "grid"]))
    kwargs: dict[str, Any] = {
        "drift": draw(st.sampled_from([0, 2] if obs_type == "grid" else [0, 5])),
        "balls_per_game": draw(st.integers(1, 3)),
        "spawn": draw(st.sampled_from(["visible", "book"])),
        "walls": draw(st.sampled_from(["clamp", "book"])),
    }
    if obs_type == "pixels":
        kwargs["frame_size"] = draw(st.sampled_from([16, 37, 80]))
        kwargs["frame_stack"] = draw(st.sampled_from([1, 2, 3, 4, 8]))
    return obs_type, kwargs


ACTIONS = st.lists(st.integers(0, 2), min_size=0, max_size=90)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    game=single_envs(),
    how=st.sampled_from(sorted(COPIERS)),
    wrapped=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
    before=ACTIONS,
    after=ACTIONS.filter(bool),
)
def test_a_copied_single_env_continues_exactly(game, how, wrapped, seed, before, after):
    obs_type, kwargs = game
    env = gymnasium.make(ENV_IDS[obs_type], **kwargs) if wrapped else CatchEnv(obs_type, **kwargs)
    original = Driver(env)
    env.reset(seed=seed)
    for a in before:
        original.act(a)
    twin = Driver(COPIERS[how](env), ended=original.ended)
    for t, a in enumerate(after):  # side by side: a copy sharing an array would diverge
        assert_same(original.act(a), twin.act(a), f"step {t} after the copy")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    game=single_envs(),
    how=st.sampled_from(sorted(COPIERS)),
    num_envs=st.integers(1, 4),
    mode=st.sampled_from(["next_step", "same_step"]),
    own_buffer=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
    before=st.integers(0, 80),
    after=st.integers(1, 80),
)
def test_a_copied_vector_env_continues_exactly(
    game, how, num_envs, mode, own_buffer, seed, before, after
):
    obs_type, kwargs = game
    env = CatchVectorEnv(num_envs, obs_type, autoreset_mode=mode, copy=not own_buffer, **kwargs)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    for _ in range(before):
        env.step(rng.integers(0, 3, size=num_envs))
    twin = COPIERS[how](env)
    for t in range(after):
        a = rng.integers(0, 3, size=num_envs)
        mine, theirs = env.step(a), twin.step(a)
        if own_buffer:  # the buffers are the envs' own: compare before the next step
            assert mine[0] is not theirs[0]
        assert_same(mine, theirs, f"step {t} after the copy")


def test_a_deep_copied_pixel_env_does_not_freeze():
    """The defect of issue 11: the copy's frames stayed on the reset frame."""
    env = CatchEnv("pixels")
    first, _ = env.reset(seed=0)
    twin = copy.deepcopy(env)
    moved = twin.step(2)[0]
    assert not np.array_equal(moved, first)
    np.testing.assert_array_equal(moved, env.step(2)[0])


def test_a_copy_of_a_human_env_opens_its_own_window():
    env = CatchEnv("state", render_mode="human")
    env.reset(seed=0)
    assert env._window is not None
    for how in COPIERS.values():
        twin = how(env)
        assert twin._window is None  # a window is not copied ...
        twin.step(1)  # ... the copy opens its own when it draws
        assert twin._window is not None and twin._window is not env._window
        twin.close()
    env.close()


@pytest.mark.parametrize(
    ("obs_type", "kwargs"),
    [
        ("pixels", {"drift": 5, "balls_per_game": 2, "frame_stack": 4}),  # the fast stacks
        ("state", {"drift": 3, "balls_per_game": 3, "walls": "book"}),
    ],
)
def test_async_vector_env_continues_pickled_envs_exactly(obs_type, kwargs):
    """``AsyncVectorEnv`` (``spawn``: the envs are pickled to the workers) of mid-game envs.

    Compared against ``SyncVectorEnv`` over the very same (unpickled) env objects.
    """
    envs = []
    for i in range(2):
        env = gymnasium.make(ENV_IDS[obs_type], **kwargs)
        driver = Driver(env)
        env.reset(seed=100 + i)
        for a in np.random.default_rng(i).integers(0, 3, size=20 + 7 * i):
            driver.act(int(a))
        if driver.ended:
            env.reset()
        envs.append(env)
    fns = [lambda e=e: e for e in envs]
    remote = gymnasium.vector.AsyncVectorEnv(fns, context="spawn")
    local = gymnasium.vector.SyncVectorEnv(fns)
    try:
        actions = np.random.default_rng(9).integers(0, 3, size=(120, 2))
        for t, a in enumerate(actions):  # no reset: both go on from where the games are
            assert_same(local.step(a), remote.step(a), f"step {t}")
    finally:
        remote.close()
        local.close()
