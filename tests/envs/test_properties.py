"""Property-based tests (hypothesis): invariants of the dynamics and of the renderer."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from catchrl.envs import (
    CatchEnv,
    CatchVectorEnv,
    FrameRenderer,
    render_screen,
)
from catchrl.envs.core import (
    BatchState,
    CatchParams,
    CatchState,
    step_batch,
)
from catchrl.envs.observations import grid_boards
from tests.envs.test_core import reset_state, step_state
from tests.envs.test_render import area_downscale, draw_many, draw_one

# derandomize: the same examples on every run, so a failure here is never a fluke of the draw.
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@st.composite
def book_variants(draw: st.DrawFn) -> CatchParams:
    """The book's geometry with any combination of the variant switches."""
    return CatchParams(
        walls=draw(st.sampled_from(["clamp", "book"])),
        spawn=draw(st.sampled_from(["visible", "book"])),
        drift=draw(st.integers(0, 12)),
        balls_per_game=draw(st.integers(1, 3)),
        paddle_speed=draw(st.sampled_from([5, 10, 20, 30, 70])),
    )


@st.composite
def any_geometry(draw: st.DrawFn) -> CatchParams:
    """Any valid geometry: odd sizes, speeds that do not divide distances, tiny worlds."""
    w, h = draw(st.integers(8, 120)), draw(st.integers(8, 120))
    b = draw(st.integers(1, w // 2))
    pw = draw(st.integers(1, w))
    ph = draw(st.integers(1, max(1, h // 4)))
    py = draw(st.integers(max(h // 2, h // 4 + 1), h - ph))
    start_y = draw(st.integers(0, h // 4))
    speed = draw(st.integers(1, 10))
    catch_y = draw(st.integers(start_y + 1, py))
    landing_y = start_y + -(-(catch_y - start_y) // speed) * speed
    assume(landing_y + b <= h)
    # The book's bounce puts the paddle paddle_speed px in from a wall: it must fit.
    walls = draw(st.sampled_from(["clamp", "book"])) if pw < w else "clamp"
    paddle_speed = draw(st.integers(1, w if walls == "clamp" else w - pw))
    return CatchParams(
        width=w,
        height=h,
        ball_size=b,
        paddle_width=pw,
        paddle_height=ph,
        paddle_y=py,
        ball_start_y=start_y,
        ball_speed=speed,
        catch_y=catch_y,
        paddle_start_x=draw(st.integers(0, w - pw)),
        paddle_speed=paddle_speed,
        drift=draw(st.integers(0, (w - b) // 2)),
        balls_per_game=draw(st.integers(1, 3)),
        walls=walls,
        spawn=draw(st.sampled_from(["visible", "book"])),
    )


def clone(rng: np.random.Generator) -> np.random.Generator:
    twin = np.random.default_rng()
    twin.bit_generator.state = rng.bit_generator.state
    return twin


def overlap(params: CatchParams, s: CatchState) -> bool:
    """Ball and paddle rectangles share at least one pixel (as sets of pixel columns/rows)."""

    def shared(a: int, n: int, b: int, m: int) -> bool:
        return bool(set(range(a, a + n)) & set(range(b, b + m)))

    return shared(s.ball_x, params.ball_size, s.paddle_x, params.paddle_width) and shared(
        s.ball_y, params.ball_size, params.paddle_y, params.paddle_height
    )


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    params=st.one_of(book_variants(), any_geometry()),
    seed=st.integers(0, 2**32 - 1),
    actions=st.lists(st.integers(0, 2), min_size=1, max_size=100),
)
def test_game_invariants(params, seed, actions):
    rng = np.random.default_rng(seed)
    state = reset_state(params, rng)
    batch, batch_rng = BatchState.of([state]), [clone(rng)]  # the same game, its own batch
    steps_in_game = 0
    for a in actions:
        prev = state
        state, reward, terminated = step_state(params, state, a, rng)
        batch, b_reward, b_term = step_batch(params, batch, np.array([a]), batch_rng)
        assert batch.get(0) == state and (b_reward[0], b_term[0]) == (reward, terminated)
        steps_in_game += 1
        # The paddle stays inside the world.
        assert 0 <= state.paddle_x <= params.paddle_max_x
        # The ball's left edge stays in its spawn range: fully on screen unless spawn="book",
        # which puts it up to x = width (partly or wholly off the right edge) by design.
        assert 0 <= state.ball_x <= params.spawn_max_x
        if params.spawn == "visible":
            assert state.ball_x + params.ball_size <= params.width
        assert params.ball_start_y < state.ball_y <= params.landing_y
        assert abs(state.ball_vx) <= params.drift
        if not prev.landed:  # same ball: it moves at most |vx| sideways, never jumps
            assert abs(state.ball_x - prev.ball_x) <= abs(prev.ball_vx)
            assert state.ball_y == prev.ball_y + params.ball_speed
        # Reward only on the landing step, +1 exactly when the rectangles overlap.
        assert state.landed == (state.ball_y >= params.catch_y)
        if state.landed:
            assert reward == (1.0 if overlap(params, state) else -1.0)
        else:
            assert reward == 0.0
        assert state.landed == (steps_in_game % params.steps_per_ball == 0)
        assert state.caught + state.missed + state.balls_left == params.balls_per_game
        assert terminated == (steps_in_game == params.max_episode_steps)
        if terminated:
            state, steps_in_game = reset_state(params, rng), 0
            batch = BatchState.of([state])
            batch_rng = [clone(rng)]


# --- rendering ----------------------------------------------------------------------------


def union_area(params: CatchParams, s: CatchState) -> int:
    """Pixels of the world covered by the ball (clipped to the screen) or the paddle."""

    def span(lo: int, size: int, limit: int) -> tuple[int, int]:
        return max(lo, 0), min(lo + size, limit)

    bx, by = (
        span(s.ball_x, params.ball_size, params.width),
        span(s.ball_y, params.ball_size, params.height),
    )
    px = span(s.paddle_x, params.paddle_width, params.width)
    py = span(params.paddle_y, params.paddle_height, params.height)

    def area(x: tuple[int, int], y: tuple[int, int]) -> int:
        return max(0, x[1] - x[0]) * max(0, y[1] - y[0])

    inter_x = (max(bx[0], px[0]), min(bx[1], px[1]))
    inter_y = (max(by[0], py[0]), min(by[1], py[1]))
    return area(bx, by) + area(px, py) - area(inter_x, inter_y)


@st.composite
def world_states(draw: st.DrawFn, params: CatchParams) -> CatchState:
    """Any position the game can reach (integer, not only on the 10 px grid)."""
    return CatchState(
        ball_x=draw(st.integers(0, params.spawn_max_x)),
        ball_y=draw(st.integers(params.ball_start_y, params.landing_y)),
        ball_vx=0,
        paddle_x=draw(st.integers(0, params.paddle_max_x)),
        balls_left=1,
    )


@st.composite
def scene(draw: st.DrawFn) -> tuple[CatchParams, int, CatchState]:
    """A world, a frame size dividing it, and a state to draw."""
    if draw(st.booleans()):
        params = CatchParams(spawn=draw(st.sampled_from(["visible", "book"])))
        size = draw(st.sampled_from([80, 40, 100]))
    else:
        params = draw(any_geometry())
        divisors = [
            d
            for d in range(1, min(params.width, params.height) + 1)
            if params.width % d == 0 and params.height % d == 0
        ]
        size = draw(st.sampled_from(divisors))
    return params, size, draw(world_states(params))


@SETTINGS
@given(scene())
def test_frame_equals_area_downscale_of_the_screen(case):
    params, size, state = case
    frame = draw_one(FrameRenderer(params, size), state)
    screen = render_screen(params, state)
    assert frame.dtype == np.uint8 and frame.shape == (size, size)
    np.testing.assert_array_equal(frame, area_downscale(screen, size))


@SETTINGS
@given(scene())
def test_frame_sum_matches_the_drawn_area(case):
    params, size, state = case
    area = union_area(params, state)
    screen = render_screen(params, state)
    assert int(screen.sum()) == 255 * area
    frame = draw_one(FrameRenderer(params, size), state).astype(np.int64)
    scale_area = (params.width // size) * (params.height // size)
    coverage = screen.reshape(size, params.height // size, size, -1).mean(axis=(1, 3))
    partial = int(((coverage > 0) & (coverage < 255)).sum())
    # Each partly covered pixel rounds by at most half a grey level.
    assert abs(frame.sum() / 255 - area / scale_area) <= 0.5 / 255 * partial + 1e-9


@settings(max_examples=40, deadline=None, derandomize=True)
@given(params=book_variants(), data=st.data())
def test_batched_render_equals_one_by_one(params, data):
    states = [data.draw(world_states(params)) for _ in range(5)]
    renderer = FrameRenderer(params, 80)
    frames = draw_many(
        renderer,
        np.array([s.ball_x for s in states]),
        np.array([s.ball_y for s in states]),
        np.array([s.paddle_x for s in states]),
    )
    for frame, s in zip(frames, states, strict=True):
        np.testing.assert_array_equal(frame, draw_one(renderer, s))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    params=st.one_of(book_variants(), any_geometry()),
    obs_type=st.sampled_from(["pixels", "state"]),
    frame=st.sampled_from([(80, 4), (40, 3), (16, 1)]),
    n=st.integers(1, 4),
    seed=st.integers(0, 2**31),
    data=st.data(),
)
def test_n_single_envs_are_the_vector_env(params, obs_type, frame, n, seed, data):
    """The single env is a batch of one: game i of the vector env is a CatchEnv seeded seed + i."""
    kw = {"obs_type": obs_type, "frame_size": frame[0], "frame_stack": frame[1], "params": params}
    vec = CatchVectorEnv(n, autoreset_mode="same_step", **kw)
    singles = [CatchEnv(**kw) for _ in range(n)]
    obs, _ = vec.reset(seed=seed)
    np.testing.assert_array_equal(
        obs, np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)])
    )
    for _ in range(data.draw(st.integers(1, 2 * params.max_episode_steps + 3))):
        actions = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
        obs, reward, terminated, _, infos = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, t, _, _ = env.step(int(actions[i]))
            if t:
                np.testing.assert_array_equal(infos["final_obs"][i], o)
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
            assert (reward[i], terminated[i]) == (r, t)


@SETTINGS
@given(
    size=st.integers(1, 3),
    spawn=st.sampled_from(["visible", "book"]),
    games=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9), st.integers(0, 4)), min_size=1),
)
def test_grid_boards_are_the_screen_on_cells(size, spawn, games):
    """Bsuite's board of any batch equals the full screen's lit cells, balls off the edge cut."""
    p = CatchParams.bsuite(ball_size=size, spawn=spawn, catch_y=10 - size, paddle_width=2)
    bx, by, px = (np.array(col) for col in zip(*games, strict=True))
    px = np.minimum(px, p.paddle_max_x)
    boards = grid_boards(p, bx, by, px)
    for i in range(len(games)):
        s = CatchState(int(bx[i]), int(by[i]), 0, int(px[i]), 1)
        expected = (render_screen(p, s) > 0).astype(np.float32)
        np.testing.assert_array_equal(boards[i], expected)
        np.testing.assert_array_equal(grid_boards(p, s.ball_x, s.ball_y, s.paddle_x), expected)
