"""The pygame window, headless (SDL_VIDEODRIVER=dummy from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pygame
import pytest

from catchrl.envs import CatchEnv, CatchParams, CatchState, render_screen
from catchrl.envs.render import screen_rgb
from catchrl.envs.window import BIG, HUD_HEIGHT, SMALL, TEXT, CatchWindow, WindowClosed

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
        np.testing.assert_array_equal(surface_rgb(window)[:400], screen_rgb(env.params, env.state))
    assert steps == 33
    env.close()
    assert window.closed and not pygame.display.get_init()
    env.close()  # twice is safe
    env.reset()  # as CartPole: a reset after close works, and the window opens again
    assert env._window is not None and env._window is not window and not env._window.closed
    assert pygame.display.get_surface() is env._window.surface
    env.close()


def test_draw_shows_the_state_and_the_score_line(window, state):
    window.draw(state)
    rgb = surface_rgb(window)
    field = rgb[:400, :, 0]
    assert (field[60:80, 100:120] == 255).all()  # the ball
    assert (field[350:360, 180:230] == 255).all()  # the paddle
    assert field.sum() == 255 * (20 * 20 + 50 * 10)  # nothing else on the field
    expected = window.text("Score: 1/3, Ball: 3", TEXT, (255, 255, 255))
    assert found(rgb, expected, (8, 406))  # written in the band under the field


def found(rgb: np.ndarray, text: pygame.Surface, at: tuple[int, int]) -> bool:
    """Whether the window shows ``text`` (a rendered line) with its top-left corner at ``at``."""
    lit = pygame.surfarray.array_alpha(text).T > 200  # the letters' solid pixels
    x, y = at
    shown = rgb[y : y + lit.shape[0], x : x + lit.shape[1]].max(axis=2)
    return lit.any() and bool((shown[lit] > 100).all() and (shown[~lit] < 100).mean() > 0.5)


@pytest.mark.parametrize("q_values", [None, (0.25, -0.5, 0.75)])
def test_the_band_never_draws_on_the_field(window, q_values):
    # A ball at the very top and one on the paddle: wherever the game is, the field shows only it.
    for s in (
        CatchState(ball_x=0, ball_y=0, ball_vx=0, paddle_x=0, balls_left=3),
        CatchState(ball_x=380, ball_y=340, ball_vx=0, paddle_x=350, balls_left=1, caught=2),
    ):
        window.draw(s, "Score: 12/13, Game: 14", q_values, action=2)
        rgb = surface_rgb(window)
        screen = render_screen(window.params, s)
        np.testing.assert_array_equal(rgb[:400], np.repeat(screen[:, :, None], 3, axis=2))
        assert rgb.shape == (400 + HUD_HEIGHT, 400, 3) and rgb[400:].any()


def test_q_values_are_three_labelled_bars_the_chosen_one_marked(window, state):
    window.draw(state, "Score: 0/0, Game: 1", (0.1, 0.9, -0.4), action=1)
    band = surface_rgb(window)[428:442]  # the bars' rows
    yellow = (band[..., 0] > 200) & (band[..., 1] > 150) & (band[..., 2] < 120)
    grey = (band[..., 0] > 100) & (band[..., 0] == band[..., 2])
    slot = (400 - 8) // 3
    lengths = [
        int((yellow | grey)[:, 8 + i * slot : 8 + (i + 1) * slot].any(axis=0).sum())
        for i in range(3)
    ]
    assert lengths[1] > lengths[0] > lengths[2] > 0  # stay's Q is highest, right's lowest
    assert yellow[:, 8 + slot : 8 + 2 * slot].any() and not yellow[:, : 8 + slot].any()
    labels = [window.text(t, SMALL, (150, 150, 150)) for t in ("left +0.10", "right -0.40")]
    rgb = surface_rgb(window)
    assert found(rgb, labels[0], (8, 446)) and found(rgb, labels[1], (8 + 2 * slot, 446))


def test_the_end_screen_shows_the_total_score(window):
    window.end_screen("3 games played", "Score: 2/3")
    rgb = surface_rgb(window)
    score = window.text("Score: 2/3", BIG, (255, 255, 255))
    x, y = score.get_rect(center=(200, 200)).topleft
    assert found(rgb, score, (x, y))
    assert not found(rgb, window.text("Score: 3/3", BIG, (255, 255, 255)), (x, y))
    assert found(rgb, window.text("Score: 2/3", TEXT, (255, 255, 255)), (8, 406))


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


class FakeClock:
    """Stands in for the window's pygame clock and ``time.monotonic``: each tick is one frame
    of exact fake time, and ``on_frame(n)`` runs after the n-th (to press keys mid-linger)."""

    def __init__(self, on_frame: Callable[[int], None] = lambda n: None) -> None:
        self.ticks: list[int] = []
        self.now = Fraction(0)
        self.on_frame = on_frame

    def tick(self, fps: int) -> None:
        self.ticks.append(fps)
        self.now += Fraction(1, fps)
        assert len(self.ticks) < 1000, "linger never returned"
        self.on_frame(len(self.ticks))

    def monotonic(self) -> Fraction:
        return self.now


@pytest.fixture
def visible_window(window, monkeypatch):
    monkeypatch.setattr(CatchWindow, "visible", property(lambda self: not self.closed))
    return window


def test_linger_waits_for_enter_on_a_visible_window(visible_window):
    def press_enter_on_frame_3(n: int) -> None:
        if n == 3:
            key(pygame.KEYDOWN, pygame.K_RETURN)

    visible_window.clock = clock = FakeClock(press_enter_on_frame_3)
    key(pygame.KEYDOWN, pygame.K_LEFT)  # not a key that dismisses
    visible_window.linger(None)
    assert clock.ticks == [30, 30, 30]  # kept the window up, frame by frame, until Enter
    assert not visible_window.closed and visible_window.quit_reason is None
    visible_window.linger(0.0)  # Enter was consumed: a later linger does not return early...
    assert clock.ticks == [30, 30, 30]  # ...and one with no time left does not wait at all


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE), None),
        (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_KP_ENTER), None),
        (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE), "ESC pressed"),
        (pygame.event.Event(pygame.QUIT), "window closed"),
    ],
)
def test_linger_ends_on_space_keypad_enter_esc_or_close(visible_window, event, reason):
    visible_window.clock = clock = FakeClock(lambda n: pygame.event.post(event) if n == 2 else None)
    visible_window.linger(None)
    assert len(clock.ticks) == 2
    assert visible_window.quit_reason == reason  # ESC / close stay recorded for the caller


def test_linger_gives_up_after_its_seconds(visible_window, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("catchrl.envs.window.time", clock)  # its monotonic() is the fake time
    visible_window.clock = clock
    key(pygame.KEYDOWN, pygame.K_LEFT)  # keys that do not dismiss do not end it early
    visible_window.linger(0.5)
    assert clock.ticks == [30] * 15  # 0.5 s of 30 FPS frames, then it returns
    assert not visible_window.closed


def test_refuses_clearly_without_a_display(monkeypatch):
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(RuntimeError, match="no display"):
        CatchWindow(CatchParams())
