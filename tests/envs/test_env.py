"""``CatchEnv``: observations, determinism, bad input, closing, rendering, the window."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from gymnasium.error import ResetNeeded

from catchrl.envs import CatchEnv, CatchParams, CatchState, render_screen
from catchrl.envs.window import HUD_HEIGHT
from tests.envs.test_render import draw_one

OBS_TYPES = ("pixels", "state", "grid")


def rollout(env: CatchEnv, seed: int, steps: int = 50, action_seed: int = 0) -> list:
    """``steps`` steps of seeded random play, resetting (unseeded) after each game."""
    actions = np.random.default_rng(action_seed).integers(0, 3, size=steps)
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(int(a))
        out.append((obs, r, term, trunc, info))
        if term or trunc:
            out.append(env.reset())
    return out


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            if isinstance(u, np.ndarray):
                assert u.dtype == v.dtype and u.shape == v.shape
                np.testing.assert_array_equal(u, v)
            else:
                assert type(u) is type(v) and u == v


# --- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("obs_type", OBS_TYPES)
@pytest.mark.parametrize(
    "kwargs", [{}, {"drift": 4, "walls": "book", "spawn": "book"}], ids=["book", "variant"]
)
def test_same_seed_same_trajectory(obs_type, kwargs):
    if obs_type == "grid" and "drift" in kwargs:
        kwargs = {"balls_per_game": 3, "walls": "book"}
    a = rollout(CatchEnv(obs_type, **kwargs), seed=123, steps=50)
    b = rollout(CatchEnv(obs_type, **kwargs), seed=123, steps=50)
    assert_same(a, b)
    assert sum(1 for x in a if len(x) == 5 and x[2]) >= 1  # a game ended inside the 50 steps
    # Reseeding the same env replays the same trajectory too.
    env = CatchEnv(obs_type, **kwargs)
    rollout(env, seed=5, steps=20)
    assert_same(rollout(env, seed=123, steps=50), a)


@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_different_seeds_differ(obs_type):
    a = rollout(CatchEnv(obs_type), seed=1)
    b = rollout(CatchEnv(obs_type), seed=2)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True))


def test_reset_without_seed_continues_the_generator():
    env = CatchEnv("state")
    env.reset(seed=9)
    firsts = [env.reset()[0][0] for _ in range(30)]
    assert len(set(firsts)) > 20


# --- observations hand-checked ------------------------------------------------------------


def test_state_observation_values():
    env = CatchEnv("state")
    obs, info = env.reset(seed=0)
    s = env.state
    assert obs.dtype == np.float32 and obs.shape == (3,)
    np.testing.assert_array_equal(obs, np.float32([s.ball_x / 400, 10 / 400, 200 / 400]))
    assert info == {"caught": 0, "missed": 0, "balls_left": 1}
    obs, r, term, trunc, info = env.step(2)
    np.testing.assert_array_equal(obs, np.float32([s.ball_x / 400, 20 / 400, 220 / 400]))
    assert (r, term, trunc) == (0.0, False, False)
    assert env.observation_space.contains(obs)


def test_state_observation_with_drift_has_the_speed():
    env = CatchEnv("state", drift=5)
    obs, _ = env.reset(seed=4)
    assert obs.shape == (4,)
    assert obs[3] == np.float32(env.state.ball_vx / 5)
    assert env.observation_space.contains(obs)


def test_pixel_stack_repeats_the_first_frame_then_shifts_oldest_first():
    env = CatchEnv("pixels")
    obs0, _ = env.reset(seed=3)
    assert obs0.shape == (80, 80, 4) and obs0.dtype == np.uint8
    for k in range(1, 4):
        np.testing.assert_array_equal(obs0[..., k], obs0[..., 0])
    obs1 = env.step(1)[0]
    np.testing.assert_array_equal(obs1[..., :3], obs0[..., 1:])
    np.testing.assert_array_equal(obs1[..., 3], draw_one(env.renderer, env.state))
    assert not np.array_equal(obs1[..., 3], obs1[..., 2])  # the ball fell 2 frame rows
    obs2 = env.step(1)[0]
    np.testing.assert_array_equal(obs2[..., :3], obs1[..., 1:])
    obs1[...] = 0  # returned arrays are copies, not the env's buffer
    assert env.step(1)[0][..., 0].any()


def test_a_state_set_by_hand_with_the_paddle_off_the_field_is_refused():
    env = CatchEnv("pixels")
    env.reset(seed=0)
    for paddle_x in (-1, env.params.paddle_max_x + 1):
        with pytest.raises(ValueError, match="CatchEnv.state paddle_x"):
            env.state = CatchState(ball_x=2, ball_y=10, ball_vx=0, paddle_x=paddle_x, balls_left=1)


def test_pixel_frame_hand_checked():
    env = CatchEnv("pixels")
    env.reset(seed=0)
    env.state = CatchState(ball_x=2, ball_y=10, ball_vx=0, paddle_x=200, balls_left=1)
    frame = draw_one(env.renderer, env.state)
    # 5 x 5 world pixels per frame pixel: the ball covers x 2..21, y 10..29.
    assert frame[2, 0] == round(255 * 3 / 5)
    assert frame[2, 1] == frame[5, 3] == 255
    assert frame[2, 4] == round(255 * 2 / 5)
    assert frame[1, 0] == frame[6, 0] == frame[2, 5] == 0
    assert (frame[70:72, 40:50] == 255).all()  # the paddle: y 350..359, x 200..249
    assert frame[70:72].sum() == 2 * 10 * 255
    assert frame.sum() == 255 * (20 * 20 + 50 * 10) // 25


def test_grid_observation_is_bsuites_board():
    env = CatchEnv("grid")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (10, 5) and obs.dtype == np.float32
    s = env.state
    expected = np.zeros((10, 5), np.float32)
    expected[0, s.ball_x] = 1.0
    expected[9, 2] = 1.0
    np.testing.assert_array_equal(obs, expected)


def test_grid_follows_bsuite_rules():
    """bsuite: ball row 0 falls a row a step; paddle clamped; +1 iff columns match on row 9."""
    for seed in range(20):
        env = CatchEnv("grid")
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        ball_col = int(np.flatnonzero(obs[0])[0])
        paddle = 2
        for t in range(9):
            a = int(rng.integers(0, 3))
            paddle = min(max(paddle + a - 1, 0), 4)
            obs, r, term, trunc, _ = env.step(a)
            assert obs[t + 1, ball_col] == 1.0 and obs[9, paddle] == 1.0
            assert obs.sum() == (2.0 if t < 8 or ball_col != paddle else 1.0)
            assert term == (t == 8) and not trunc
            assert r == (0.0 if t < 8 else (1.0 if ball_col == paddle else -1.0))


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "error", "match"),
    [
        (3, ValueError, "got 3"),
        (-1, ValueError, "got -1"),
        (1.0, TypeError, "float"),
        (np.array([1]), TypeError, r"shape \(1,\)"),
        ("1", TypeError, "str"),
        (True, TypeError, "bool"),
        (None, TypeError, "NoneType"),
    ],
)
def test_bad_actions_are_refused_clearly(action, error, match):
    env = CatchEnv("state")
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.step(action)
    env.step(1)  # the env is still usable


@pytest.mark.parametrize("action", [0, 2, np.int64(1), np.int8(2), np.array(0), np.uint8(1)])
def test_integer_like_actions_are_accepted(action):
    env = CatchEnv("state")
    env.reset(seed=0)
    env.step(action)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ball_speeed": 3}, TypeError, "ball_speeed"),
        ({"obs_type": "rgb"}, ValueError, "unknown obs_type 'rgb'"),
        ({"width": 0}, ValueError, "width must be > 0"),
        ({"paddle_width": -5}, ValueError, "paddle_width must be > 0"),
        ({"walls": "wrap"}, ValueError, "walls"),
        ({"spawn": "top"}, ValueError, "spawn"),
        ({"frame_size": 0}, ValueError, "frame_size"),
        ({"frame_stack": 0}, ValueError, "frame_stack"),
        ({"render_mode": "ansi"}, ValueError, "render_mode"),
        ({"params": CatchParams(), "drift": 2}, TypeError, "not both"),
        ({"params": {"drift": 2}}, TypeError, "CatchParams"),
    ],
)
def test_bad_construction_is_refused_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        CatchEnv(**kwargs)


def test_params_object_or_keywords_give_the_same_game():
    a = rollout(CatchEnv("state", params=CatchParams(drift=3)), seed=1)
    b = rollout(CatchEnv("state", drift=3), seed=1)
    assert_same(a, b)


def test_step_before_reset_and_after_the_end():
    env = CatchEnv("state")
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(1)
    env.reset(seed=0)
    for _ in range(33):
        *_, term, _, _ = env.step(1)
    assert term
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(1)
    env.reset()
    env.step(1)


# --- rendering ------------------------------------------------------------------------------


def test_rgb_array_render_is_the_full_screen():
    env = CatchEnv("pixels", render_mode="rgb_array")
    env.reset(seed=2)
    for _ in range(5):
        env.step(0)
    img = env.render()
    assert img.dtype == np.uint8 and img.shape == (400, 400, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], render_screen(env.params, env.state))
    s = env.state
    assert img[s.ball_y + 5, s.ball_x + 5].tolist() == [255, 255, 255]
    assert img[355, 100].tolist() == [255, 255, 255]  # paddle went left 5 x 20 px to 100
    assert img.sum() == 3 * 255 * (20 * 20 + 50 * 10)


def test_grid_rgb_array_scales_cells_up():
    env = CatchEnv("grid", render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (400, 200, 3) and img.dtype == np.uint8
    assert img.sum() == 3 * 255 * 2 * 40 * 40


def test_render_without_mode_warns_and_returns_none():
    env = CatchEnv("state")
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_human_window_plays_a_whole_game_and_closes():
    env = CatchEnv("pixels", render_mode="human")
    env.reset(seed=0)
    window = env._window
    assert window is not None and window.size == (400, 400 + HUD_HEIGHT)
    ticks: list[int] = []  # the frame rate each frame waited for (no wall clock needed)
    window.clock = SimpleNamespace(tick=ticks.append)
    steps, term = 0, False
    while not term:
        *_, term, _, _ = env.step(2 if steps % 2 else 0)
        steps += 1
    assert steps == 33
    assert ticks == [30] * 33 == [env.metadata["render_fps"]] * steps  # one 30 FPS wait a frame
    env.close()
    assert env._window is None and not window.pg.display.get_init()
    env.close()
