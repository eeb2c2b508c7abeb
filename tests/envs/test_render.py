"""The renderer on hand-computed cases (the hypothesis properties are in test_properties.py)."""

from __future__ import annotations

import numpy as np
import pytest

from catchrl.envs import CatchParams, CatchState, FrameRenderer, render_screen
from catchrl.envs.render import FrameStack

BOOK = CatchParams()


def state(ball_x: int, ball_y: int, paddle_x: int = 200) -> CatchState:
    return CatchState(ball_x=ball_x, ball_y=ball_y, ball_vx=0, paddle_x=paddle_x, balls_left=1)


def area_downscale(screen: np.ndarray, size: int) -> np.ndarray:
    """The reference frame: a ``[H, W]`` screen area-averaged to ``[size, size]``, rounded."""
    h, w = screen.shape  # whole multiples of size
    blocks = screen.reshape(size, h // size, size, w // size).astype(np.float64)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def draw_many(renderer: FrameRenderer, ball_x, ball_y, paddle_x) -> np.ndarray:
    """N states' ``[N, size, size]`` frames, drawn as the vector env draws them."""
    bx, by, px = (np.atleast_1d(np.asarray(a, dtype=np.int64)) for a in (ball_x, ball_y, paddle_x))
    return FrameStack(renderer, len(bx), 1).reset(np.arange(len(bx)), bx, by, px)[..., 0]


def draw_one(renderer: FrameRenderer, s: CatchState) -> np.ndarray:
    """One state's frame: a one-game stack, drawn by slices as CatchEnv draws it."""
    return draw_many(renderer, s.ball_x, s.ball_y, s.paddle_x)[0]


def test_render_screen_draws_ball_and_paddle_in_white():
    screen = render_screen(BOOK, state(100, 10, 300))
    assert screen.shape == (400, 400) and screen.dtype == np.uint8
    assert (screen[10:30, 100:120] == 255).all()
    assert (screen[350:360, 300:350] == 255).all()
    assert screen.sum() == 255 * (400 + 500)
    assert screen[9, 100] == screen[30, 100] == screen[10, 99] == screen[10, 120] == 0
    assert screen[349, 300] == screen[360, 300] == screen[350, 350] == 0


def test_render_screen_clips_a_ball_past_the_right_edge():
    params = CatchParams(spawn="book")
    assert render_screen(params, state(390, 10, 0))[10:30].sum() == 255 * 20 * 10
    assert render_screen(params, state(400, 10, 0))[10:30].sum() == 0  # wholly off screen


def test_area_downscale_hand_computed():
    screen = np.zeros((4, 6), np.uint8)
    screen[0, 0] = screen[1, 2] = 255  # 2 of the 6 pixels of block (0, 0): 2 x 3 blocks
    screen[2:4, 3:6] = 255
    screen[3, 0] = 255  # 1 of 6: 42.5 rounds half to even
    np.testing.assert_array_equal(
        area_downscale(screen, 2), np.array([[85, 0], [42, 255]], np.uint8)
    )


@pytest.mark.parametrize(
    ("size", "ball_x", "ball_y", "pixel", "value"),
    [
        (80, 2, 10, (2, 0), round(255 * 3 / 5)),  # x 2..5 of 0..5 covered
        (80, 2, 12, (2, 0), round(255 * 3 / 5 * 3 / 5)),  # and y 12..15 of 10..15
        (40, 5, 10, (1, 0), round(255 * 5 / 10)),
        (40, 5, 10, (2, 2), round(255 * 5 / 10)),  # the ball ends at x = 25
        (100, 1, 10, (3, 0), round(255 * 3 / 4)),  # 4 px blocks: row 3 is y 12..15
        (100, 1, 10, (2, 0), round(255 * 3 / 4 * 2 / 4)),
        (80, 390, 10, (2, 79), 255),  # partly off screen: 390..399 visible
        (80, 400, 10, (2, 79), 0),
    ],
)
def test_frame_pixel_values_hand_computed(size, ball_x, ball_y, pixel, value):
    params = CatchParams(spawn="book")
    frame = draw_one(FrameRenderer(params, size), state(ball_x, ball_y, paddle_x=0))
    assert frame[pixel] == value


def test_overlapping_ball_and_paddle_are_not_counted_twice():
    s = state(210, 345, 200)  # the ball covers y 345..364, the paddle 350..359
    frame = draw_one(FrameRenderer(BOOK, 80), s)
    assert frame.max() == 255
    np.testing.assert_array_equal(frame, area_downscale(render_screen(BOOK, s), 80))
    union = 20 * 20 + 50 * 10 - 20 * 10
    assert render_screen(BOOK, s).sum() == 255 * union


def test_non_square_world_in_a_square_frame():
    grid = CatchParams.bsuite()  # 5 wide, 10 high
    frame = draw_one(FrameRenderer(grid, 5), state(3, 4, 1))
    expected = np.zeros((5, 5), np.uint8)
    expected[2, 3] = 128  # the ball fills one of the two rows of frame row 2
    expected[4, 1] = 128  # the paddle is on row 9
    np.testing.assert_array_equal(frame, expected)


def test_many_frames_equal_one_by_one():
    r = FrameRenderer(BOOK, 80)
    frames = draw_many(r, np.array([0, 380, 17]), np.array([10, 340, 123]), np.array([0, 350, 99]))
    for frame, (bx, by, px) in zip(
        frames, [(0, 10, 0), (380, 340, 350), (17, 123, 99)], strict=True
    ):
        np.testing.assert_array_equal(frame, draw_one(r, state(bx, by, px)))


@pytest.mark.parametrize("size", [0, -80, 80.0, True])
def test_bad_frame_size(size):
    with pytest.raises(ValueError, match="frame_size"):
        FrameRenderer(BOOK, size)


@pytest.mark.parametrize(
    ("ball_x", "ball_y", "paddle_x"),
    [
        (4, 335, 1),  # block (35, 0): union 90 of 100 px -> 229.5 -> 230 (half to even)
        (6, 335, 5),  # union 50 of 100 -> 127.5 -> 128
        (56, 335, 1),  # block (35, 5): 10 (paddle) + 20 (ball) of 100 -> 76.5 -> 76
    ],
)
def test_frame_ties_round_like_the_area_average(ball_x, ball_y, paddle_x):
    s = state(ball_x, ball_y, paddle_x)
    np.testing.assert_array_equal(
        draw_one(FrameRenderer(BOOK, 40), s), area_downscale(render_screen(BOOK, s), 40)
    )


def test_shapes_partly_or_wholly_off_the_world_draw_what_is_inside():
    params = CatchParams()
    renderer = FrameRenderer(params, 80)
    cases = [(-30, 10, -60), (-5, -15, -20), (395, 390, 380), (10_000, 20, 10_000)]
    for bx, by, px in [*cases, (-10_000, -10_000, -10_000)]:
        s = state(bx, by, px)
        expected = area_downscale(render_screen(params, s), 80)
        np.testing.assert_array_equal(draw_one(renderer, s), expected)


@pytest.mark.parametrize("size", [80, 400])  # 400: the renderer's tables would be large
def test_one_and_many_frames_are_the_area_average_at_any_size(size):
    renderer = FrameRenderer(BOOK, size)
    cases = [(0, 10, 0), (210, 345, 200), (390, 340, 350), (-30, -15, -20), (10_000, 20, 10_000)]
    expected = [area_downscale(render_screen(BOOK, state(*c)), size) for c in cases]
    for case, frame in zip(cases, expected, strict=True):
        np.testing.assert_array_equal(draw_one(renderer, state(*case)), frame)
    np.testing.assert_array_equal(draw_many(renderer, *np.array(cases).T), np.stack(expected))
