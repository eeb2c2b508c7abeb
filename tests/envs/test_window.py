"""The pygame window, headless (SDL_VIDEODRIVER=dummy from tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pygame
import pytest

from catchrl.envs import CatchEnv, CatchParams, CatchState
from catchrl.envs.window import HUD_HEIGHT, CatchWindow, WindowClosed

LEFT, STAY, RIGHT = 0, 1, 2


def key(kind: int, code: int) -> None:
    pygame.event.post(pygame.event.Event(kind, key=code))


def surface_rgb(window: CatchWindow) -> np.ndarray:
    """What the window shows, as uint8 [H, W, 3]."""
    return pygame.surfarray.array3d(window.surface).transpose(1, 0, 2)


@pytest.fixture
def window():
    w = CatchWindow(CatchParams(balls_per_game=3), fps=0)
    yield w
    w.close()


@pytest.fixture
def state() -> CatchState:
    return CatchState(
        ball_x=100, ball_y=60, ball_vx=0, paddle_x=180, balls_left=3, caught=1, missed=1
    )


def test_human_env_plays_a_game_in_the_window_and_closes_twice():
    env = CatchEnv(obs_type="state", render_mode="human", balls_per_game=1)
    env.reset(seed=3)
    window = env._window
    assert window is not None and pygame.display.get_surface() is window.surface
    assert window.size == (400, 400 + HUD_HEIGHT)
    terminated, steps = False, 0
    while not terminated:
        _, _, terminated, _, _ = env.step(RIGHT)
        steps += 1
        # The field of the window is the env's own full-size screen, pixel for pixel.
        np.testing.assert_array_equal(surface_rgb(window)[:400], env.screen_rgb())
    assert steps == 33
    env.close()
    assert window.closed and not pygame.display.get_init()
    env.close()  # twice is safe
    with pytest.raises(RuntimeError, match="after close"):
        env.reset()


def test_draw_shows_the_state_and_the_score_line(window, state):
    window.draw(state)
    rgb = surface_rgb(window)
    field = rgb[:400, :, 0]
    assert (field[60:80, 100:120] == 255).all()  # the ball
    assert (field[350:360, 180:230] == 255).all()  # the paddle
    assert field.sum() == 255 * (20 * 20 + 50 * 10)  # nothing else on the field
    assert rgb[400 + 4 :, :200].any()  # "Score: 1/3, Ball: 3" is written under the field
    before = rgb.copy()
    window.draw(state, banner="Game over!")
    assert (surface_rgb(window) != before).any()


def test_screenshot_saves_what_the_window_shows(window, state, tmp_path):
    window.draw(state, lines=("hello",))
    path = tmp_path / "shot.png"
    window.screenshot(path)
    image = pygame.image.load(str(path))
    saved = pygame.surfarray.array3d(image).transpose(1, 0, 2)
    np.testing.assert_array_equal(saved, surface_rgb(window))


def test_held_key_moves_every_frame_and_a_tap_once(window):
    assert window.held_action() == STAY
    key(pygame.KEYDOWN, pygame.K_LEFT)
    window.poll()
    assert [window.held_action() for _ in range(3)] == [LEFT, LEFT, LEFT]
    key(pygame.KEYUP, pygame.K_LEFT)
    window.poll()
    assert window.held_action() == STAY
    # A tap shorter than a frame (down and up between two polls) still moves once.
    key(pygame.KEYDOWN, pygame.K_RIGHT)
    key(pygame.KEYUP, pygame.K_RIGHT)
    window.poll()
    assert [window.held_action(), window.held_action()] == [RIGHT, STAY]
    # Both arrows held: stay; releasing one leaves the other.
    key(pygame.KEYDOWN, pygame.K_LEFT)
    key(pygame.KEYDOWN, pygame.K_RIGHT)
    window.poll()
    assert window.held_action() == STAY
    key(pygame.KEYUP, pygame.K_LEFT)
    window.poll()
    assert window.held_action() == RIGHT
    # Losing the focus releases every key (the KEYUP goes to another window).
    pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSLOST))
    window.poll()
    assert window.held_action() == STAY


def test_keys_pumped_by_draw_are_not_lost(window, state):
    key(pygame.KEYDOWN, pygame.K_a)
    key(pygame.KEYDOWN, pygame.K_RIGHT)
    window.draw(state)  # pumps the events itself
    assert window.poll() == [pygame.K_a, pygame.K_RIGHT]
    assert window.held_action() == RIGHT
    assert window.poll() == []


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE), "ESC pressed"),
        (pygame.event.Event(pygame.QUIT), "window closed"),
    ],
)
def test_poll_raises_on_esc_or_close(window, event, reason):
    pygame.event.post(event)
    with pytest.raises(WindowClosed, match=reason):
        window.poll()
    with pytest.raises(WindowClosed, match=reason):  # and keeps saying so
        window.poll()
    assert not window.closed  # the caller decides when to close


def test_a_quit_seen_while_drawing_closes_the_window(window, state, tmp_path):
    key(pygame.KEYDOWN, pygame.K_ESCAPE)
    window.draw(state)
    assert window.closed and window.quit_reason == "ESC pressed"
    assert not pygame.display.get_init()
    window.draw(state)  # a no-op now
    assert window.held_action() == STAY
    with pytest.raises(WindowClosed, match="ESC pressed"):
        window.poll()
    with pytest.raises(RuntimeError, match="closed"):
        window.screenshot(tmp_path / "x.png")
    window.close()
    window.close()


def test_linger_returns_at_once_when_nobody_can_see_the_window(window):
    assert not window.visible  # SDL's dummy driver
    window.linger(None)  # would wait for a key on a real display


def test_linger_waits_for_enter_on_a_visible_window(window, monkeypatch):
    monkeypatch.setattr(CatchWindow, "visible", property(lambda self: True))
    key(pygame.KEYDOWN, pygame.K_LEFT)  # not a key that closes
    key(pygame.KEYDOWN, pygame.K_RETURN)
    window.linger(None)  # returns: Enter was pressed
    window.linger(0.05)  # returns: time is up


def test_refuses_clearly_without_a_display(monkeypatch):
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(RuntimeError, match="no display"):
        CatchWindow(CatchParams())
