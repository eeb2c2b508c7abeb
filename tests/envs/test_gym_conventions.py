"""Gymnasium's and SB3's conventions, checked against how CartPole (Gymnasium's own) behaves.

``check_env`` with every render mode, ``gymnasium.utils.play.play`` driven by
posted key events, ``reset(options=...)``, the env's life after ``close()``,
``is_success``, and ``gymnasium.make`` by module prefix (light imports: tests/test_imports.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pygame
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.play import play

from catchrl.envs import ENV_IDS, CatchEnv, CatchVectorEnv
from catchrl.envs.core import ACTION_LEFT, ACTION_RIGHT, ACTION_STAY

IDS = list(ENV_IDS.values())
RENDER_MODES = [None, "rgb_array", "human"]  # human: SDL's dummy driver (tests/conftest.py)
WRAPPED = "different from the unwrapped version"  # check_env's remark on any gymnasium.make env


def warnings_of(fn, *args, **kwargs) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    return [str(w.message) for w in caught]


# --- check_env ------------------------------------------------------------------------------


@pytest.mark.parametrize("render_mode", RENDER_MODES)
@pytest.mark.parametrize("env_name", IDS)
def test_check_env_passes_with_every_render_mode(env_name, render_mode):
    """``check_env`` on ``gymnasium.make(id, render_mode=...)`` and on the bare env: no warning
    but the one every wrapped env gets (CartPole adds its infinite-bounds remarks).

    The checker also makes the env in every declared render mode and renders it.
    """
    env = gymnasium.make(env_name, render_mode=render_mode)
    assert [m for m in warnings_of(check_env, env) if WRAPPED not in m] == []
    assert warnings_of(check_env, env.unwrapped) == []
    env.close()


def test_check_env_passes_headless_without_any_sdl_setting_as_cartpole_does():
    """No display and no ``SDL_VIDEODRIVER``: CartPole's human mode draws off-screen, so do we."""
    code = (
        "import gymnasium, catchrl, warnings\n"
        "from gymnasium.utils.env_checker import check_env\n"
        "for name in ['CartPole-v1', *catchrl.ENV_IDS.values()]:\n"
        "    with warnings.catch_warnings(record=True) as w:\n"
        "        warnings.simplefilter('always')\n"
        "        check_env(gymnasium.make(name, render_mode='human'))\n"
        "    print(name, any('nothing is shown' in str(x.message) for x in w))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"SDL_VIDEODRIVER", "DISPLAY"}}
    env.pop("WAYLAND_DISPLAY", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split() for line in out.stdout.splitlines())
    assert lines.pop("CartPole-v1") == "False"
    assert lines == dict.fromkeys(IDS, "True")  # passed, and said that no window is shown


@pytest.mark.parametrize("render_mode", RENDER_MODES)
@pytest.mark.parametrize("env_name", IDS)
def test_sb3_check_env_passes_with_every_render_mode(env_name, render_mode):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = gymnasium.make(env_name, render_mode=render_mode)
    messages = warnings_of(sb3_checker.check_env, env, warn=True, skip_render_check=False)
    if env_name == ENV_IDS["grid"]:
        # bsuite's 10 x 5 board is neither an image nor a vector: the one expected remark.
        assert len(messages) == 1 and "unconventional shape" in messages[0], messages
    else:
        assert messages == []
    env.close()


# --- play.play ------------------------------------------------------------------------------


def test_play_plays_with_the_env_keys_driven_by_posted_key_events():
    """``gymnasium.utils.play.play`` with no ``keys_to_action``: the env's own arrow keys.

    The key source is scripted: the callback, called after each step, posts the
    key events that play's own event loop reads before the next step.
    """
    env = gymnasium.make("catchrl/CatchState-v0", render_mode="rgb_array")
    script = {
        4: [(pygame.KEYDOWN, pygame.K_RIGHT)],
        9: [(pygame.KEYUP, pygame.K_RIGHT), (pygame.KEYDOWN, pygame.K_LEFT)],
        14: [(pygame.KEYDOWN, pygame.K_RIGHT)],  # both arrows: stay
        19: [(pygame.QUIT, None)],
    }
    actions, paddle = [], []

    def callback(obs_t, obs_tp1, action, rew, terminated, truncated, info):
        actions.append(action)
        paddle.append(round(float(obs_tp1[2]) * 400))
        for kind, key in script.get(len(actions) - 1, []):
            event = pygame.event.Event(kind, key=key) if key else pygame.event.Event(kind)
            pygame.event.post(event)

    play(env, fps=1000, callback=callback, seed=0, noop=ACTION_STAY)
    stay, right, left = ACTION_STAY, ACTION_RIGHT, ACTION_LEFT
    assert actions == [stay] * 5 + [right] * 5 + [left] * 5 + [stay] * 5
    assert paddle == [200] * 5 + [220, 240, 260, 280, 300] + [280, 260, 240, 220, 200] + [200] * 5


def test_get_keys_to_action_maps_the_arrows():
    keys = gymnasium.make("catchrl/Catch-v0").get_wrapper_attr("get_keys_to_action")()
    assert keys == {
        (pygame.K_LEFT,): ACTION_LEFT,
        (pygame.K_RIGHT,): ACTION_RIGHT,
        (pygame.K_LEFT, pygame.K_RIGHT): ACTION_STAY,
    }


# --- reset options -------------------------------------------------------------------------


def test_reset_options_set_the_start_and_leave_the_generator_alone():
    plain, placed = CatchEnv("state", balls_per_game=3), CatchEnv("state", balls_per_game=3)
    plain.reset(seed=5)
    obs, info = placed.reset(seed=5, options={"ball_x": 0, "paddle_x": 0})
    np.testing.assert_array_equal(obs, np.array([0.0, 10 / 400, 0.0], dtype=np.float32))
    assert info == {"caught": 0, "missed": 0, "balls_left": 3}
    for _ in range(33):  # the first ball falls onto the paddle: caught
        _, reward, *_ = placed.step(ACTION_STAY)
        plain.step(ACTION_STAY)
    assert reward == 1.0
    placed.step(ACTION_STAY)
    plain.step(ACTION_STAY)
    assert placed.state.ball_x == plain.state.ball_x  # the next ball: drawn as without options


def test_reset_options_set_the_ball_speed_with_drift():
    env = CatchEnv("state", drift=5)
    env.reset(seed=0, options={"ball_x": 100, "ball_vx": -5})
    assert (env.state.ball_x, env.state.ball_vx) == (100, -5)
    env.step(ACTION_STAY)
    assert env.state.ball_x == 95


def test_grid_reset_options_are_cells():
    env = gymnasium.make("catchrl/CatchGrid-v0")
    obs, _ = env.reset(seed=0, options={"ball_x": 4, "paddle_x": 0})
    assert obs[0].tolist() == [0, 0, 0, 0, 1] and obs[9].tolist() == [1, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "options", "error", "match"),
    [
        ({}, {"bal_x": 3}, ValueError, r"unknown option\(s\) \['bal_x'\].*'ball_x'"),
        ({}, {"ball_x": 381}, ValueError, r"'ball_x'.*\[0, 380\], got 381"),
        ({}, {"ball_x": -1}, ValueError, r"'ball_x'.*got -1"),
        ({"spawn": "book"}, {"ball_x": 401}, ValueError, r"'ball_x'.*\[0, 400\], got 401"),
        ({}, {"paddle_x": 351}, ValueError, r"'paddle_x'.*\[0, 350\], got 351"),
        ({}, {"paddle_x": 2.0}, ValueError, r"'paddle_x'.*got 2.0"),
        ({}, {"ball_x": True}, ValueError, r"'ball_x'.*got True"),
        ({}, {"ball_vx": 1}, ValueError, r"'ball_vx'.*\[0, 0\], got 1"),
        ({"drift": 4}, {"ball_vx": -5}, ValueError, r"'ball_vx'.*\[-4, 4\], got -5"),
        ({}, ["ball_x"], TypeError, "options must be a dict"),
    ],
)
@pytest.mark.parametrize("vector", [False, True])
def test_bad_reset_options_are_refused_naming_the_key(kwargs, options, error, match, vector):
    env = CatchVectorEnv(2, "state", **kwargs) if vector else CatchEnv("state", **kwargs)
    with pytest.raises(error, match=match):
        env.reset(seed=0, options=options)


def test_book_spawn_takes_a_ball_on_the_wall():
    env = CatchEnv("state", spawn="book")
    env.reset(seed=0, options={"ball_x": 400})
    assert env.state.ball_x == 400


# --- close ---------------------------------------------------------------------------------


def lifecycle(env: gymnasium.Env) -> list[str]:
    """What each call does around a close: its result's kind, or the error's name."""
    calls = [
        lambda: env.reset(seed=0),
        lambda: env.step(1),
        env.close,
        env.close,
        lambda: env.reset(seed=0),
        lambda: env.step(1),
        env.render,
        env.close,
        env.render,
    ]
    out = []
    for call in calls:
        try:
            result = call()
        except Exception as e:
            out.append(type(e).__name__)
        else:
            out.append("frame" if isinstance(result, np.ndarray) else type(result).__name__)
    return out


@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_close_then_reset_and_render_behave_as_cartpole(render_mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # render() without a render mode warns, in both
        cartpole = lifecycle(gymnasium.make("CartPole-v1", render_mode=render_mode))
        ours = lifecycle(gymnasium.make("catchrl/Catch-v0", render_mode=render_mode))
    assert ours == cartpole
    assert ours[4:6] == ["tuple", "tuple"]  # reset and step after close work


def test_close_then_reset_works_in_human_mode_too():
    """As in the other modes. (CartPole-v1 of Gymnasium 1.4 fails here: its reset draws on
    the display surface its close() quit, ``pygame.error: display Surface quit``.)"""
    ours = lifecycle(gymnasium.make("catchrl/Catch-v0", render_mode="human"))
    assert ours == ["tuple", "tuple", "NoneType", "NoneType", "tuple", "tuple", *["NoneType"] * 3]


def test_render_reopens_the_window_after_close():
    env = CatchEnv("state", render_mode="human")
    env.reset(seed=0)
    first = env._window
    env.close()
    assert first.closed
    env.render()
    assert env._window is not None and not env._window.closed
    assert pygame.display.get_surface() is env._window.surface
    env.close()


# --- is_success -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balls", "start", "outcome"),
    [
        (1, {"ball_x": 0, "paddle_x": 0}, True),
        (1, {"ball_x": 300, "paddle_x": 0}, False),
        (2, {"ball_x": 0, "paddle_x": 0}, None),  # the second ball decides
    ],
)
def test_is_success_is_in_the_last_info_only(balls, start, outcome):
    env = gymnasium.make("catchrl/CatchState-v0", balls_per_game=balls)
    _, info = env.reset(seed=1, options=start)
    assert "is_success" not in info
    terminated = False
    while not terminated:
        _, _, terminated, _, info = env.step(ACTION_STAY)
        assert ("is_success" in info) == terminated
    expected = info["missed"] == 0 if outcome is None else outcome
    assert info["is_success"] is expected


def test_sb3_logs_a_success_rate():
    sb3 = pytest.importorskip("stable_baselines3")
    model = sb3.PPO("MlpPolicy", "catchrl/CatchGrid-v0", n_steps=64, batch_size=32, seed=0)
    model.learn(64)
    assert len(model.ep_success_buffer) > 0  # filled only from infos' is_success


# --- registration ---------------------------------------------------------------------------


def test_make_with_the_module_prefix_needs_no_import():
    code = "import gymnasium; gymnasium.make('catchrl:catchrl/Catch-v0').reset(seed=0)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
