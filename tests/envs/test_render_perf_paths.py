"""The fast pixel paths return exactly what the plain code returned.

``CatchEnv`` and ``CatchVectorEnv`` draw their frame stacks incrementally
(``FrameStack`` / ``BatchFrameStack``: per-position patches, in-place word
shifts, only the pixels that change) and the vector env draws new balls ahead
in blocks. Here the code they replaced is kept, verbatim in what it computes,
as a reference: the original renderer (:class:`OldRenderer`), the original
single-env stacking and the original vector step. Both sides play thousands
of random steps and every observation, reward and flag must be bit-identical.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.utils import seeding

from catchrl.envs import (
    CatchEnv,
    CatchParams,
    CatchState,
    CatchVectorEnv,
    batch_framestack,
    frame_tables,
)
from catchrl.envs.batch_framestack import BatchFrameStack
from catchrl.envs.core import BatchState, reset_batch, reset_state, step_batch, step_state
from catchrl.envs.framestack import FrameStack, stack_word
from catchrl.envs.observations import grid_boards, make_params, state_features
from catchrl.envs.raster import FrameRenderer

BOOK_DRIFT = {"drift": 7, "balls_per_game": 3, "walls": "book", "spawn": "book"}
SMALL = {"frame_size": 40, "frame_stack": 2}
CONFIGS = {
    "default": {},
    "drift7-3balls-book": BOOK_DRIFT,
    "size40-stack2": SMALL,
    "drift7-3balls-book-size40-stack2": {**BOOK_DRIFT, **SMALL},
}
# Other stack depths and a frame size that does not divide the world (inexact float scale).
ODD_CONFIGS = {
    "stack1": {"frame_stack": 1, "balls_per_game": 2},
    "stack3-fallback": {"frame_stack": 3, "drift": 4, "balls_per_game": 2},
    "stack8-size84": {"frame_stack": 8, "frame_size": 84, "drift": 3, "balls_per_game": 2},
    "size57-odd-geometry": {
        "frame_size": 57,
        "ball_size": 13,
        "ball_speed": 7,
        "drift": 4,
        "paddle_speed": 13,
        "paddle_height": 7,
        "paddle_y": 331,
        "balls_per_game": 3,
    },
}


# --- the reference: the code before the fast paths -------------------------


class OldRenderer:
    """The original ``FrameRenderer`` (what it computes, line for line)."""

    def __init__(self, params: CatchParams, size: int = 80) -> None:
        self.params, self.size = params, int(size)
        self.sx, self.sy = params.width / size, params.height / size
        self.ball_w = min(size, math.ceil(params.ball_size / self.sx) + 1)
        self.ball_h = min(size, math.ceil(params.ball_size / self.sy) + 1)
        self.paddle_w = min(size, math.ceil(params.paddle_width / self.sx) + 1)
        self.paddle_h = min(size, math.ceil(params.paddle_height / self.sy) + 1)

    def _window(self, lo, extent, scale, n):
        start = np.floor(lo / scale).astype(np.int64)
        return np.clip(start, 0, self.size - n)

    @staticmethod
    def _cov(lo, hi, start, n, scale):
        edge = (start[:, None] + np.arange(n)) * scale
        lo, hi = lo[:, None], hi[:, None]
        return np.clip(np.minimum(hi, edge + scale) - np.maximum(lo, edge), 0.0, scale) / scale

    def _values(self, bx, by, px, c0, r0, nw, nh):
        p = self.params
        b, sx, sy = p.ball_size, self.sx, self.sy
        py = np.full_like(by, p.paddle_y)
        ix0, ix1 = np.maximum(bx, px), np.minimum(bx + b, px + p.paddle_width)
        iy0, iy1 = np.maximum(by, py), np.minimum(by + b, py + p.paddle_height)
        cov = (
            self._cov(by, by + b, r0, nh, sy)[:, :, None]
            * self._cov(bx, bx + b, c0, nw, sx)[:, None, :]
        )
        cov += (
            self._cov(py, py + p.paddle_height, r0, nh, sy)[:, :, None]
            * self._cov(px, px + p.paddle_width, c0, nw, sx)[:, None, :]
        )
        cov -= (
            self._cov(iy0, iy1, r0, nh, sy)[:, :, None]
            * self._cov(ix0, ix1, c0, nw, sx)[:, None, :]
        )
        return np.rint(np.round(cov * 255.0, 6)).astype(np.uint8)

    def render(self, ball_x, ball_y, paddle_x) -> np.ndarray:
        p = self.params
        bx, by, px = (
            np.asarray(np.atleast_1d(a), dtype=np.float64) for a in (ball_x, ball_y, paddle_x)
        )
        frames = np.zeros((len(bx), self.size, self.size), dtype=np.uint8)
        py = np.full_like(by, p.paddle_y)
        n = np.arange(len(bx))[:, None, None]
        for x, y, nw, nh, ew, eh in (
            (bx, by, self.ball_w, self.ball_h, p.ball_size, p.ball_size),
            (px, py, self.paddle_w, self.paddle_h, p.paddle_width, p.paddle_height),
        ):
            c0 = self._window(x, ew, self.sx, nw)
            r0 = self._window(y, eh, self.sy, nh)
            vals = self._values(bx, by, px, c0, r0, nw, nh)
            rows = r0[:, None, None] + np.arange(nh)[None, :, None]
            cols = c0[:, None, None] + np.arange(nw)[None, None, :]
            frames[n, rows, cols] = vals
        return frames


def plain_state_row(params: CatchParams, s) -> np.ndarray:
    """The original single env's ``state`` observation of one game (Python floats, rounded once)."""
    values = [s.ball_x / params.width, s.ball_y / params.height, s.paddle_x / params.width]
    if params.drift:
        values.append(s.ball_vx / params.drift)
    return np.array(values, dtype=np.float32)


def plain_board(params: CatchParams, s) -> np.ndarray:
    """The original single env's ``grid`` board of one game: two slices set to 1."""
    p, b = params, params.ball_size
    board = np.zeros((p.height, p.width), dtype=np.float32)
    board[max(s.ball_y, 0) : max(s.ball_y + b, 0), max(s.ball_x, 0) : max(s.ball_x + b, 0)] = 1.0
    board[
        p.paddle_y : p.paddle_y + p.paddle_height,
        max(s.paddle_x, 0) : max(s.paddle_x + p.paddle_width, 0),
    ] = 1.0
    return board


def old_obs(obs_type, params, renderer, stack, state, first, depth):
    """The original ``CatchEnv._first_obs`` / ``_next_obs``: ``(obs, stack)``."""
    if obs_type == "pixels":
        frame = renderer.render(state.ball_x, state.ball_y, state.paddle_x)[0]
        if first:
            stack = np.repeat(frame[:, :, None], depth, axis=2)
        else:
            stack[:, :, :-1] = stack[:, :, 1:]
            stack[:, :, -1] = frame
        return stack.copy(), stack
    if obs_type == "state":
        return plain_state_row(params, state), stack
    return plain_board(params, state), stack


class OldSingle:
    """The original ``CatchEnv``: core dynamics, its seeded generator, the plain stacking."""

    def __init__(self, obs_type: str, frame_size: int = 80, frame_stack: int = 4, **kw) -> None:
        self.obs_type, self.depth = obs_type, frame_stack
        self.params = make_params(obs_type, None, kw, "OldSingle")
        self.renderer = OldRenderer(self.params, frame_size)
        self.stack = None

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.rng = seeding.np_random(seed)[0]
        self.state = reset_state(self.params, self.rng)
        obs, self.stack = old_obs(
            self.obs_type, self.params, self.renderer, self.stack, self.state, True, self.depth
        )
        return obs

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        self.state, reward, terminated = step_state(self.params, self.state, action, self.rng)
        obs, self.stack = old_obs(
            self.obs_type, self.params, self.renderer, self.stack, self.state, False, self.depth
        )
        return obs, reward, terminated


class OldVector:
    """The original ``CatchVectorEnv`` step: per-game draws, full re-render, strided shift."""

    def __init__(
        self, n: int, obs_type: str, mode: str, frame_size: int = 80, frame_stack: int = 4, **kw
    ) -> None:
        self.n, self.obs_type, self.mode, self.depth = n, obs_type, mode, frame_stack
        self.params = make_params(obs_type, None, kw, "OldVector")
        self.renderer = OldRenderer(self.params, frame_size)
        s = self.renderer.size
        self.obs = np.zeros((n, s, s, frame_stack), dtype=np.uint8)

    def reset(self, seed: int) -> np.ndarray:
        self.rngs = [seeding.np_random(seed + i)[0] for i in range(self.n)]
        self.batch = BatchState.zeros(self.n)
        idx = np.arange(self.n)
        reset_batch(self.params, self.batch, idx, self.rngs)
        self.needs_reset = np.zeros(self.n, dtype=bool)
        return self._fresh(idx).copy()

    def step(self, actions: np.ndarray):
        b, p = self.batch, self.params
        restart = np.flatnonzero(self.needs_reset)
        a = actions.astype(np.int64)
        if restart.size:
            a = np.where(~self.needs_reset, a, 1)
            b.landed[restart] = False
        reward, terminated = step_batch(p, b, a, self.rngs)
        if restart.size:
            reset_batch(p, b, restart, self.rngs)
            reward[restart] = 0.0
            terminated[restart] = False
        obs = self._next(restart)
        final = {}
        if self.mode == "same_step":
            for i in np.flatnonzero(terminated):
                final[int(i)] = obs[i].copy()
            if final:
                done = np.flatnonzero(terminated)
                reset_batch(p, b, done, self.rngs)
                obs = self._fresh(done)
        else:
            self.needs_reset = terminated.copy()
        return obs.copy(), reward, terminated, final

    def _features(self):
        plain = plain_state_row if self.obs_type == "state" else plain_board
        return np.stack([plain(self.params, self.batch.get(i)) for i in range(self.n)])

    def _fresh(self, idx):
        if self.obs_type != "pixels":
            return self._features()
        b = self.batch
        frames = self.renderer.render(b.ball_x[idx], b.ball_y[idx], b.paddle_x[idx])
        self.obs[idx] = frames[..., None]
        return self.obs

    def _next(self, restart):
        if self.obs_type != "pixels":
            return self._features()
        b, obs = self.batch, self.obs
        frames = self.renderer.render(b.ball_x, b.ball_y, b.paddle_x)
        obs[..., :-1] = obs[..., 1:]
        obs[..., -1] = frames
        if restart.size:
            obs[restart] = frames[restart][..., None]
        return obs


def assert_same(a: np.ndarray, b: np.ndarray, msg: str) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape, msg
    assert a.tobytes() == b.tobytes(), msg


# --- single env --------------------------------------------------------------


def play_single(obs_type: str, kw: dict, steps: int, seed: int = 5) -> int:
    env, old = CatchEnv(obs_type, **kw), OldSingle(obs_type, **kw)
    actions = np.random.default_rng(seed).integers(0, 3, size=steps).tolist()
    assert_same(env.reset(seed=seed)[0], old.reset(seed), "reset")
    live = FrameRenderer(env.params, env.renderer.size)
    games = 0
    for t, a in enumerate(actions):
        obs, reward, terminated, truncated, _ = env.step(a)
        ref, ref_reward, ref_terminated = old.step(a)
        assert env.state == old.state, t
        assert (reward, terminated, truncated) == (ref_reward, ref_terminated, False), t
        assert_same(obs, ref, f"step {t}")
        if obs_type == "pixels" and t % 7 == 0:  # and the live renderer agrees
            np.testing.assert_array_equal(obs[..., -1], live.render_state(env.state))
        if terminated:
            games += 1
            assert_same(env.reset()[0], old.reset(), f"reset after step {t}")
    return games


@pytest.mark.parametrize("kw", CONFIGS.values(), ids=CONFIGS.keys())
def test_single_env_pixels_equal_the_plain_code(kw):
    assert play_single("pixels", kw, 800) > 800 // (34 * kw.get("balls_per_game", 1)) - 2


@pytest.mark.parametrize("kw", ODD_CONFIGS.values(), ids=ODD_CONFIGS.keys())
def test_single_env_pixels_equal_the_plain_code_other_stacks_and_sizes(kw):
    assert play_single("pixels", kw, 600) > 0


FEATURE_CASES = [
    ("state", {}),
    ("state", {"drift": 7, "balls_per_game": 3, "spawn": "book"}),
    ("grid", {}),
    ("grid", {"balls_per_game": 3, "walls": "book"}),
]


@pytest.mark.parametrize(("obs_type", "kw"), FEATURE_CASES)
def test_single_env_state_and_grid_equal_the_plain_code(obs_type, kw):
    assert play_single(obs_type, kw, 1000) > 0


@pytest.mark.parametrize(
    "params",
    [CatchParams(), CatchParams(drift=5, spawn="book"), CatchParams.bsuite()],
    ids=["book", "drift", "bsuite"],
)
def test_the_one_feature_code_equals_the_plain_code_for_one_game_and_a_batch(params):
    """state_features / grid_boards: ints give one game's row, arrays the batch; both plain."""
    rng = np.random.default_rng(3)
    n = 200
    bx = rng.integers(-params.ball_size - 2, params.width + 3, n)  # partly off the board too
    by = rng.integers(-params.ball_size - 2, params.height + 3, n)
    vx = rng.integers(-params.drift, params.drift + 1, n)
    px = rng.integers(-params.paddle_width - 2, params.width + 3, n)
    states = [
        CatchState(int(bx[i]), int(by[i]), int(vx[i]), int(px[i]), balls_left=1) for i in range(n)
    ]
    rows, boards = state_features(params, bx, by, vx, px), grid_boards(params, bx, by, px)
    out = np.full_like(rows, np.nan)
    assert state_features(params, bx, by, vx, px, out=out) is out
    assert_same(out, rows, "out=")
    for i, st in enumerate(states):
        one_row = state_features(params, st.ball_x, st.ball_y, st.ball_vx, st.paddle_x)
        one_board = grid_boards(params, st.ball_x, st.ball_y, st.paddle_x)
        assert_same(one_row, plain_state_row(params, st), f"state {st}")
        assert_same(rows[i], one_row, f"state row {i}")
        assert_same(one_board, plain_board(params, st), f"grid {st}")
        assert_same(boards[i], one_board, f"grid board {i}")
    assert boards.sum() > 0


# --- vector env --------------------------------------------------------------


def play_vector(
    obs_type: str, kw: dict, mode: str, steps: int, n: int = 8, copy: bool = True, seed: int = 11
) -> int:
    vec = CatchVectorEnv(n, obs_type=obs_type, autoreset_mode=mode, copy=copy, **kw)
    old = OldVector(n, obs_type, mode, **kw)
    actions = np.random.default_rng(seed).integers(0, 3, size=(steps, n))
    obs, _ = vec.reset(seed=seed)
    assert_same(obs, old.reset(seed), "reset")
    previous, ended = obs, 0
    for t in range(steps):
        obs, reward, terminated, truncated, infos = vec.step(actions[t])
        ref, ref_reward, ref_terminated, ref_final = old.step(actions[t])
        assert_same(reward, ref_reward, f"reward, step {t}")
        assert_same(terminated, ref_terminated, f"terminated, step {t}")
        assert not truncated.any()
        assert_same(obs, ref, f"obs, step {t}")
        if ref_final:
            assert sorted(np.flatnonzero(infos["_final_obs"])) == sorted(ref_final)
            for i, o in ref_final.items():
                assert_same(infos["final_obs"][i], o, f"final obs {i}, step {t}")
        else:
            assert "final_obs" not in infos
        if obs_type != "grid":  # grid boards are new arrays either way
            assert (obs is previous) == (not copy)
        previous, ended = obs, ended + int(terminated.sum())
    return ended


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("kw", CONFIGS.values(), ids=CONFIGS.keys())
def test_vector_env_pixels_equal_the_plain_code(kw, mode):
    steps = 800 if mode == "next_step" else 400  # the modes differ only at the ends of games
    assert play_vector("pixels", kw, mode, steps) > 8 * steps // (35 * kw.get("balls_per_game", 1))


@pytest.mark.parametrize("kw", ODD_CONFIGS.values(), ids=ODD_CONFIGS.keys())
def test_vector_env_pixels_equal_the_plain_code_other_stacks_and_sizes(kw):
    assert play_vector("pixels", kw, "next_step", 400) > 0


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_env_copy_false_returns_the_same_values_in_its_buffer(mode):
    assert play_vector("pixels", BOOK_DRIFT, mode, 400, n=5, copy=False) > 0


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize(("obs_type", "kw"), FEATURE_CASES)
def test_vector_env_state_and_grid_equal_the_plain_code(obs_type, kw, mode):
    for copy in (True, False):
        assert play_vector(obs_type, kw, mode, 300, n=6, copy=copy) > 0


def test_vector_env_with_many_games_starting_together():
    """Every game ends on the same step: the whole batch restarts at once, repeatedly."""
    assert play_vector("pixels", {}, "next_step", 139, n=100) == 4 * 100


def test_copy_true_arrays_do_not_share_the_env_buffer():
    vec = CatchVectorEnv(3, copy=True)
    a, _ = vec.reset(seed=0)
    b = vec.step(np.ones(3, dtype=np.int64))[0]
    assert not np.shares_memory(a, b) and not np.shares_memory(b, vec._obs)
    kept = b.copy()
    vec.step(np.ones(3, dtype=np.int64))
    np.testing.assert_array_equal(b, kept)


def test_reseeding_part_of_the_batch_replays_those_games():
    vec = CatchVectorEnv(3, obs_type="state", drift=3, balls_per_game=2)
    vec.reset(seed=40)
    for _ in range(50):
        vec.step(np.ones(3, dtype=np.int64))
    obs, _ = vec.reset(seed=[None, 41, None])  # game 1 replays seed 41, the others go on
    single = CatchEnv("state", drift=3, balls_per_game=2)
    np.testing.assert_array_equal(obs[1], single.reset(seed=41)[0])
    for _ in range(80):
        obs = vec.step(np.ones(3, dtype=np.int64))[0]
        o, _, t, _, _ = single.step(1)
        np.testing.assert_array_equal(obs[1], o)
        if t:  # next_step: the following step restarts the game
            obs = vec.step(np.ones(3, dtype=np.int64))[0]
            np.testing.assert_array_equal(obs[1], single.reset()[0])


# --- the stacks themselves, on positions no game reaches ---------------------


def reference_stacks(renderer: OldRenderer, positions, resets, depth: int) -> list[np.ndarray]:
    """Plain stacking of N games through a sequence of ``(bx, by, px)`` arrays."""
    out, stack = [], None
    for (bx, by, px), fresh in zip(positions, resets, strict=True):
        frames = renderer.render(bx, by, px)
        if stack is None:
            stack = np.repeat(frames[..., None], depth, axis=3)
        else:
            stack[..., :-1] = stack[..., 1:]
            stack[..., -1] = frames
            stack[fresh] = frames[fresh][..., None]
        out.append(stack.copy())
    return out


def random_positions(
    params: CatchParams, n: int, steps: int, rng: np.random.Generator, odd: float
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Random walks near the paddle (ball and paddle sharing pixels), some out of range."""
    bx = rng.integers(0, params.width + 1, n)
    by = rng.integers(params.paddle_y - 2 * params.ball_size, params.paddle_y + 2, n)
    px = rng.integers(0, params.paddle_max_x + 1, n)
    out = []
    for _ in range(steps):
        bx = np.clip(bx + rng.integers(-9, 10, n), 0, params.width)
        by = np.clip(by + rng.integers(-4, 5, n), 0, params.height - params.ball_size)
        px = np.clip(px + rng.integers(-25, 26, n), 0, params.paddle_max_x)
        wild = rng.random(n) < odd
        out.append(
            (
                np.where(wild, rng.integers(-60, params.width + 60, n), bx),
                np.where(wild, rng.integers(-40, params.height + 40, n), by),
                np.where(rng.random(n) < odd, -7, px),
            )
        )
    return out


@pytest.mark.parametrize(("size", "depth"), [(80, 4), (40, 2), (84, 8), (57, 4), (7, 4), (80, 1)])
@pytest.mark.parametrize("odd", [0.0, 0.02])
def test_frame_stacks_equal_plain_stacking_anywhere(size, depth, odd):
    check_stacks_against_plain_stacking(CatchParams(spawn="book"), size, depth, odd)


@pytest.mark.parametrize(("size", "depth"), [(80, 4), (57, 8)])
def test_frame_stacks_without_tables_or_caches_equal_plain_stacking(monkeypatch, size, depth):
    """What a world too large to tabulate, or a full cache, takes: patches computed each time."""
    monkeypatch.setattr(frame_tables, "TABLE_MAX_BYTES", 0)
    monkeypatch.setattr(batch_framestack, "TABLE_MAX_BYTES", 0)
    monkeypatch.setattr(FrameStack, "_CACHE_MAX_BYTES", 0)
    params = CatchParams(spawn="book", ball_start_y=11)  # its own shared pieces
    frame_tables.shared_pieces.cache_clear()
    try:
        pieces = frame_tables.shared_pieces(params, size)
        assert pieces._table is None
        assert BatchFrameStack(FrameRenderer(params, size), 2, depth)._patch_table is None
        check_stacks_against_plain_stacking(params, size, depth, 0.02)
    finally:
        frame_tables.shared_pieces.cache_clear()  # no table-less pieces for later tests


def check_stacks_against_plain_stacking(
    params: CatchParams, size: int, depth: int, odd: float
) -> None:
    rng = np.random.default_rng(size * 10 + depth)
    n, steps = 6, 120
    positions = random_positions(params, n, steps, rng, odd)
    resets = [np.zeros(n, dtype=bool)] + [rng.random(n) < 0.05 for _ in range(steps - 1)]
    expected = reference_stacks(OldRenderer(params, size), positions, resets, depth)
    renderer = FrameRenderer(params, size)
    batch = BatchFrameStack(renderer, n, depth)
    singles = [FrameStack(renderer, depth) for _ in range(n)]
    assert singles[0]._max_bands >= 1
    for t, ((bx, by, px), fresh, want) in enumerate(zip(positions, resets, expected, strict=True)):
        if t == 0:
            got = batch.reset(np.arange(n), bx, by, px)
        else:
            got = batch.push(bx, by, px)
            idx = np.flatnonzero(fresh)
            if idx.size:
                got = batch.reset(idx, bx[idx], by[idx], px[idx])
        assert_same(got, want, f"batch, step {t}")
        for i, stack in enumerate(singles):
            pos = (int(bx[i]), int(by[i]), int(px[i]))
            one = stack.reset(*pos) if t == 0 or fresh[i] else stack.push(*pos)
            assert_same(one, want[i], f"single {i}, step {t}")


def test_stack_words_cover_the_power_of_two_depths():
    assert [stack_word(k) for k in (1, 2, 4, 8)] == [np.dtype(f"<u{k}") for k in (1, 2, 4, 8)]
    assert stack_word(3) is None and stack_word(16) is None


# --- the benchmark's book reference draws the same frames -------------------


def test_book_reference_frames_match_the_renderer():
    from catchrl.benchmarks.env import BookPixelReference

    ref = BookPixelReference(seed=3)
    renderer = FrameRenderer(CatchParams.book(), 80)
    rng = np.random.default_rng(3)
    for _ in range(40):
        ref.ball_x, ref.ball_y = int(rng.integers(0, 401)), int(rng.integers(1, 35)) * 10
        ref.paddle_x = int(rng.integers(0, 351))
        want = renderer.render(ref.ball_x, ref.ball_y, ref.paddle_x)[0] / 255.0
        np.testing.assert_allclose(ref._frame(), want, atol=0.51 / 255)
    ref.reset()
    stack, _, _ = ref.step(1)
    assert stack.shape == (80, 80, 4) and stack.dtype == np.float64
