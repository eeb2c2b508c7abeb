"""``catchrl play``, in SDL's dummy window (tests/conftest.py) and headless."""

from __future__ import annotations

import numpy as np
import pygame
import pytest

from catchrl.cli import build_parser, main
from catchrl.commands.options import game_overrides
from catchrl.envs import CatchEnv, CatchParams
from catchrl.envs.window import HUD_HEIGHT, CatchWindow
from tests.envs.test_core import reset_state


def post_key(kind: int, code: int) -> None:
    pygame.event.post(pygame.event.Event(kind, key=code))


def play(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["play", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def seed_with_first_ball_left() -> int:
    """A seed whose first ball falls at x <= 15: a paddle held left catches it, held right not."""
    return next(
        s for s in range(1000) if reset_state(CatchParams(), np.random.default_rng(s)).ball_x <= 15
    )


@pytest.fixture
def display():
    """An initialised display, so key events can be posted before ``catchrl play`` opens."""
    pygame.display.init()
    pygame.display.set_mode((10, 10))
    pygame.event.clear()
    yield
    pygame.display.quit()


def test_oracle_catches_every_ball_in_the_window(capsys):
    rc, out, err = play(capsys, "--policy", "oracle", "--balls", "5", "--fps", "0")
    assert (rc, out, err) == (0, "Score: 5/5\n", "")
    assert not pygame.display.get_init()  # the window was closed


@pytest.mark.parametrize(("arrow", "score"), [(pygame.K_LEFT, "1/1"), (pygame.K_RIGHT, "0/1")])
def test_the_arrow_keys_move_the_paddle(capsys, display, arrow, score):
    seed = seed_with_first_ball_left()
    post_key(pygame.KEYDOWN, arrow)  # held down the whole game
    rc, out, _ = play(capsys, "--balls", "1", "--fps", "0", "--seed", str(seed))
    assert (rc, out) == (0, f"Score: {score}\n")


def test_esc_quits_at_once_with_the_score_so_far(capsys, display):
    post_key(pygame.KEYDOWN, pygame.K_ESCAPE)
    rc, out, _ = play(capsys, "--fps", "0")
    assert (rc, out) == (0, "Score: 0/100 (quit after 0 of 100 balls: ESC pressed)\n")


def test_closing_the_window_quits(capsys, display):
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    rc, out, _ = play(capsys, "--policy", "oracle", "--balls", "3", "--fps", "0")
    assert (rc, out) == (0, "Score: 0/3 (quit after 0 of 3 balls: window closed)\n")


def test_a_held_arrow_moves_the_paddle_to_the_wall_and_esc_keeps_the_score_so_far(display):
    from catchrl.envs import CatchEnv
    from catchrl.video import play_games

    env = CatchEnv(obs_type="state", balls_per_game=3)
    window = CatchWindow(env.params, fps=0)
    try:
        post_key(pygame.KEYDOWN, pygame.K_RIGHT)  # held: 20 px a step, stopped at x = 350
        played = play_games(env, None, window, seed=0)
    finally:
        window.close()
    assert env.state.paddle_x == 350 and played.quit_reason is None
    assert played.score_line() == f"Score: {played.caught}/3" and played.balls == 3
    env = CatchEnv(obs_type="state", balls_per_game=3)
    window = CatchWindow(env.params, fps=0)
    try:
        post_key(pygame.KEYDOWN, pygame.K_ESCAPE)
        played = play_games(env, None, window, seed=0)
    finally:
        window.close()
    assert (played.caught, played.balls, played.quit_reason) == (0, 0, "ESC pressed")
    assert played.score_line() == "Score: 0/3 (quit after 0 of 3 balls: ESC pressed)"


def test_screenshot_shows_the_final_score(capsys, tmp_path):
    path = tmp_path / "end.png"
    rc, out, _ = play(
        capsys, "--policy", "oracle", "--balls", "2", "--fps", "0", "--screenshot", str(path)
    )
    assert (rc, out) == (0, "Score: 2/2\n")
    rgb = pygame.surfarray.array3d(pygame.image.load(str(path))).transpose(1, 0, 2)
    assert rgb.shape == (400 + HUD_HEIGHT, 400, 3)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 2] < 150)
    assert yellow[130:200].any()  # "Game over!" mid-field, the score under it


def test_headless_plays_without_a_window(capsys):
    rc, out, _ = play(
        capsys,
        "--policy",
        "oracle",
        "--headless",
        "--balls",
        "50",
        "--seed",
        "4",
        "--walls",
        "book",
        "--drift",
        "5",
    )
    assert (rc, out) == (0, "Score: 50/50\n")
    assert not pygame.display.get_init()


def test_headless_random_is_seeded_and_weak(capsys):
    argv = ("--policy", "random", "--headless", "--balls", "300", "--seed", "7")
    first, second = play(capsys, *argv), play(capsys, *argv)
    assert first == second
    caught = int(first[1].split()[1].split("/")[0])
    assert 20 <= caught <= 90  # a random player wins about 17 % of the balls


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--headless"], "--headless needs --policy"),
        (["--headless", "--policy", "oracle", "--screenshot", "x.png"], "--screenshot needs"),
        (["--linger", "nan"], "--linger must be a finite number"),  # the rest: test_bad_input.py
        (["--drift", "500"], "--drift: must be in [0, 190]"),
        (["--screenshot", "/no/such/folder/x.png"], "does not exist"),
    ],
)
def test_user_mistakes_are_one_line_errors(capsys, argv, message):
    rc, out, err = play(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("catchrl play: error: ") and message in err
    assert not pygame.display.get_init()  # refused before any window opened


def test_no_display_is_a_one_line_error(capsys, monkeypatch):
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    rc, _, err = play(capsys)
    assert rc == 2 and err.count("\n") == 1 and "no display" in err and "--headless" in err


def test_game_options_reach_the_game():
    args = build_parser().parse_args(
        ["play", "--walls", "book", "--spawn", "book", "--drift", "3", "--balls", "7"]
    )
    game = CatchEnv(**game_overrides(args)).params
    assert game == CatchParams(balls_per_game=7, drift=3, walls="book", spawn="book")
    default = CatchEnv(**game_overrides(build_parser().parse_args(["play"]))).params
    assert default == CatchParams(balls_per_game=100)
    assert (default.walls, default.spawn) == ("clamp", "visible")


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["play", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--balls",
        "--walls",
        "--spawn",
        "--drift",
        "--fps",
        "--seed",
        "--policy",
        "--headless",
        "--screenshot",
        "--linger",
        "examples:",
        "ESC",
    ):
        assert option in text
