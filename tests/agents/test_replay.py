"""ReplayMemory: exact contents at game boundaries and after wrap-around, n-step returns."""

import numpy as np
import pytest

from catchrl.agents.replay import ReplayMemory
from catchrl.envs import CatchVectorEnv

# -- helpers ----------------------------------------------------------------------


def play_pixels(mem: ReplayMemory, num_envs: int, steps: int, seed: int = 0):
    """Random play into ``mem``; returns every obs the env gave, per env and add index."""
    env = CatchVectorEnv(num_envs, obs_type="pixels", autoreset_mode="same_step")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    seen, ends = [], []
    for _ in range(steps):
        actions = rng.integers(0, 3, num_envs)
        next_obs, rewards, terminated, truncated, _ = env.step(actions)
        mem.add(obs, actions, rewards, terminated, truncated)
        seen.append(obs)
        ends.append(terminated | truncated)
        obs = next_obs
    return np.stack(seen, axis=1), np.stack(ends, axis=1)  # [N, T, 80, 80, 4], [N, T]


def absolute_time(mem: ReplayMemory, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    env, slot = np.divmod(indices, mem.slots)
    last = mem._adds - 1
    return env, last - (last - slot) % mem.slots


def scalar_stream(mem: ReplayMemory, rewards, terminated, truncated=None):
    """Feed one env: obs of add t is [t] (float32), so a sample tells which t it is."""
    truncated = truncated or [False] * len(rewards)
    for t, (r, te, tr) in enumerate(zip(rewards, terminated, truncated, strict=True)):
        mem.add(
            np.array([[t]], np.float32),
            np.array([t % 3]),
            np.array([r], np.float32),
            np.array([te]),
            np.array([tr]),
        )


def all_samples(mem: ReplayMemory, n: int = 4000) -> dict[int, dict]:
    """Sample a lot and index the results by the transition's add index."""
    batch = mem.sample(n)
    out = {}
    for i in range(n):
        t = int(batch["obs"][i, 0])
        out[t] = {k: v[i] for k, v in batch.items()}
    return out


# -- pixels against the env's own observations ------------------------------------------


@pytest.mark.parametrize("capacity, steps", [(3 * 200, 150), (3 * 50, 150), (3 * 37, 310)])
def test_pixel_stacks_equal_env_observations(capacity, steps):
    n = 3
    mem = ReplayMemory(capacity, n, (80, 80, 4), np.uint8, frame_stack=4, seed=1)
    seen, ends = play_pixels(mem, n, steps)
    # Every sampleable transition rebuilds the env's obs and next obs exactly.
    mask = mem.sampleable()
    assert mask.sum() == mem.num_sampleable
    batch = mem.sample(2000)
    env, t = absolute_time(mem, batch["indices"])
    np.testing.assert_array_equal(batch["obs"], seen[env, t])
    alive = batch["discounts"] > 0
    np.testing.assert_array_equal(batch["next_obs"][alive], seen[env[alive], t[alive] + 1])
    np.testing.assert_array_equal(batch["discounts"][~alive], 0.0)
    np.testing.assert_array_equal(ends[env, t], ~alive)
    # Exactly the transitions whose history and next state are in memory are sampleable.
    oldest = max(steps - mem.slots, 0)
    expected = np.zeros_like(mask)
    for e in range(n):
        start = 0  # add index at which the current game started
        for tt in range(steps):
            history_kept = max(start, tt - 3) >= oldest
            next_kept = ends[e, tt] or tt + 1 < steps
            if tt >= oldest:
                expected[e, tt % mem.slots] = history_kept and next_kept
            if ends[e, tt]:
                start = tt + 1
    np.testing.assert_array_equal(mask, expected)
    assert batch["obs"].dtype == np.uint8 and batch["obs"].shape == (2000, 80, 80, 4)
    # contiguous, so that the backends take them without a transposing copy (a third of
    # a pixel train step when they were a view of [B, F, H, W])
    assert batch["obs"].flags.c_contiguous and batch["next_obs"].flags.c_contiguous


def test_pixel_memory_holds_one_frame_per_transition():
    mem = ReplayMemory(10_000, 4, (80, 80, 4), np.uint8, frame_stack=4)
    per_transition = mem.nbytes / mem.capacity
    assert 6400 <= per_transition < 6420  # the frame plus 14 bytes of action/reward/flags


def test_next_step_autoreset_is_rejected():
    env = CatchVectorEnv(2, obs_type="pixels", autoreset_mode="next_step")
    mem = ReplayMemory(1000, 2, (80, 80, 4), np.uint8, frame_stack=4)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="same_step"):
        for _ in range(40):
            actions = np.ones(2, dtype=np.int64)
            next_obs, r, te, tr, _ = env.step(actions)
            mem.add(obs, actions, r, te, tr)
            obs = next_obs


def test_a_game_under_way_is_refused():
    env = CatchVectorEnv(1, obs_type="pixels", autoreset_mode="same_step")
    obs, _ = env.reset(seed=3)
    for _ in range(5):  # the memory would start 5 steps into the game
        obs, *_ = env.step(np.ones(1, dtype=np.int64))
    mem = ReplayMemory(500, 1, (80, 80, 4), np.uint8, frame_stack=4, seed=0)
    with pytest.raises(ValueError, match="first frame repeated"):
        mem.add(obs, np.ones(1, dtype=np.int64), np.zeros(1), [False], [False])


# -- exact contents with hand-made streams ------------------------------------------


def test_frame_stacks_never_mix_games():
    # One env, frames of 1x1 pixels whose value is the add index + 1; games of 2 and 5 steps.
    mem = ReplayMemory(100, 1, (1, 1, 4), np.uint8, frame_stack=4, seed=0)
    ends = [False, True, False, False, False, False, True, False]
    history, start = [], 0
    for t, end in enumerate(ends):
        start = t if t > 0 and ends[t - 1] else start
        frames = [max(start, t - j) + 1 for j in (3, 2, 1, 0)]  # what the env would show
        history.append(frames)
        mem.add(
            np.array(frames, np.uint8).reshape(1, 1, 1, 4),
            np.array([0]),
            np.array([1.0 if end else 0.0]),
            np.array([end]),
            np.array([False]),
        )
    batch = mem.sample(1000)
    _, t = absolute_time(mem, batch["indices"])
    assert set(t.tolist()) == set(range(7))  # t=7 has no next state yet
    np.testing.assert_array_equal(batch["obs"][:, 0, 0], np.array(history)[t])
    assert history[2] == [3, 3, 3, 3] and history[5] == [3, 4, 5, 6]
    alive = ~np.isin(t, [1, 6])
    np.testing.assert_array_equal(batch["next_obs"][alive, 0, 0], np.array(history)[t[alive] + 1])


@pytest.mark.parametrize("n_step", [1, 2, 3])
def test_n_step_returns_by_hand(n_step):
    gamma = 0.5
    mem = ReplayMemory(100, 1, (1,), np.float32, n_step=n_step, gamma=gamma, seed=0)
    rewards = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    terminated = [False, False, False, True, False, False, False]
    scalar_stream(mem, rewards, terminated)
    got = all_samples(mem)
    expected = {  # t: (n-step return, discount, next t or None)
        1: {
            0: (1, 0.5, 1),
            1: (2, 0.5, 2),
            2: (4, 0.5, 3),
            3: (8, 0, None),
            4: (16, 0.5, 5),
            5: (32, 0.5, 6),
        },
        2: {
            0: (1 + 1, 0.25, 2),
            1: (2 + 2, 0.25, 3),
            2: (4 + 4, 0, None),
            3: (8, 0, None),
            4: (16 + 16, 0.25, 6),
        },
        3: {
            0: (1 + 1 + 1, 0.125, 3),
            1: (2 + 2 + 2, 0, None),
            2: (4 + 4, 0, None),
            3: (8, 0, None),
        },
    }[n_step]
    assert set(got) == set(expected)
    for t, (ret, disc, nxt) in expected.items():
        assert got[t]["rewards"] == pytest.approx(ret)
        assert got[t]["discounts"] == pytest.approx(disc)
        assert got[t]["actions"] == t % 3
        assert got[t]["next_obs"][0] == (t if nxt is None else nxt)


def test_truncated_transitions_are_never_sampled():
    mem = ReplayMemory(100, 1, (1,), np.float32, n_step=2, gamma=0.9, seed=0)
    # game 1: t=0..2 truncated at 2; game 2: t=3..4 terminated at 4; t=5 pending.
    scalar_stream(
        mem,
        [0, 0, 0, 0, 1, 0],
        [False, False, False, False, True, False],
        [False, False, True, False, False, False],
    )
    assert set(all_samples(mem)) == {0, 3, 4}
    assert mem.num_sampleable == 3 == mem.sampleable().sum()


def test_wrap_around_forgets_the_oldest():
    mem = ReplayMemory(5, 1, (1,), np.float32, n_step=1, seed=0)
    scalar_stream(mem, [0.0] * 12, [False] * 12)
    got = all_samples(mem)
    assert set(got) == {7, 8, 9, 10}  # 7..11 stored, 11 waits for its next state
    assert len(mem) == 5 and mem.num_sampleable == 4
    assert all(got[t]["next_obs"][0] == t + 1 for t in got)


def test_sample_before_any_sampleable_transition_raises():
    mem = ReplayMemory(10, 1, (1,), np.float32, n_step=3)
    with pytest.raises(ValueError, match="no sampleable"):
        mem.sample(4)
    scalar_stream(mem, [0.0, 0.0], [False, False])
    with pytest.raises(ValueError, match="no sampleable"):
        mem.sample(4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"obs_shape": (80, 80, 3), "frame_stack": 4}, "last axis"),
        ({"capacity": 1}, "slots per env"),
        ({"n_step": 0}, ">= 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"capacity": 100, "num_envs": 1, "obs_shape": (3,), "obs_dtype": np.float32, **kwargs}
    with pytest.raises(ValueError, match=match):
        ReplayMemory(**args)


def test_add_checks_the_obs_shape():
    mem = ReplayMemory(100, 2, (3,), np.float32)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        mem.add(np.zeros((3, 3)), np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3))


# -- sampling distribution, priorities, state --------------------------------------------


def test_uniform_sampling_is_uniform_and_seeded():
    def filled(seed):
        mem = ReplayMemory(50, 2, (1,), np.float32, seed=seed)
        for t in range(20):
            mem.add(
                np.full((2, 1), t, np.float32),
                np.zeros(2),
                np.zeros(2),
                np.zeros(2, bool),
                np.zeros(2, bool),
            )
        return mem

    a, b = filled(7), filled(7)
    ia, ib = a.sample(20_000)["indices"], b.sample(20_000)["indices"]
    np.testing.assert_array_equal(ia, ib)
    counts = np.bincount(ia, minlength=a.capacity)
    sampled = counts[counts > 0]
    assert len(sampled) == 2 * 19  # the newest of each env waits for its next state
    assert sampled.min() > 0.85 * 20_000 / 38 and sampled.max() < 1.15 * 20_000 / 38


def test_prioritized_sampling_follows_priorities():
    mem = ReplayMemory(10, 1, (1,), np.float32, prioritized=True, alpha=1.0, beta=1.0, seed=0)
    scalar_stream(mem, [0.0] * 5, [False] * 5)  # t = 0..3 sampleable
    mem.update_priorities(np.array([0, 1, 2, 3]), np.array([1.0, 2.0, 3.0, 4.0]) - 1e-6)
    batch = mem.sample(40_000)
    freq = np.bincount(batch["indices"], minlength=4)[:4] / 40_000
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.01)
    # w_i = (N * P(i)) ** -beta, normalised by the batch's largest: with beta = 1 the
    # weights are inversely proportional to the priorities, 1 for the lowest.
    order = np.argsort(batch["indices"], kind="stable")
    np.testing.assert_allclose(batch["weights"][order][[0, -1]], [1.0, 0.25], rtol=1e-5)


def test_new_transitions_get_the_max_priority():
    mem = ReplayMemory(10, 1, (1,), np.float32, prioritized=True, alpha=0.5, seed=0)
    scalar_stream(mem, [0.0] * 2, [False] * 2)
    mem.update_priorities(np.array([0]), np.array([16.0 - 1e-6]))
    scalar_stream(mem, [0.0] * 1, [False])
    assert mem._arrays["priority"][0, 2] == pytest.approx(4.0)


@pytest.mark.parametrize("prioritized", [False, True])
def test_state_dict_round_trip_resumes_exactly(tmp_path, prioritized):
    def make():
        return ReplayMemory(
            3 * 40,
            3,
            (80, 80, 4),
            np.uint8,
            frame_stack=4,
            n_step=2,
            prioritized=prioritized,
            seed=5,
        )

    mem = make()
    play_pixels(mem, 3, 60, seed=1)
    mem.update_priorities(np.array([3, 50]), np.array([2.0, 0.1]))
    np.savez(tmp_path / "replay.npz", **mem.state_dict())
    restored = make()
    with np.load(tmp_path / "replay.npz") as data:
        restored.load_state_dict(dict(data))
    assert restored.num_sampleable == mem.num_sampleable and len(restored) == len(mem)
    for _ in range(3):
        a, b = mem.sample(64), restored.sample(64)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    other = ReplayMemory(3 * 40, 3, (80, 80, 4), np.uint8, frame_stack=4, n_step=1)
    with pytest.raises(ValueError, match="built with"):
        other.load_state_dict(mem.state_dict())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": 10_000, "num_envs": 4, "obs_shape": (80, 80, 4), "obs_dtype": np.uint8,
         "frame_stack": 4},
        {"capacity": 1_001, "num_envs": 3, "obs_shape": (80, 80, 4), "obs_dtype": np.uint8},
        {"capacity": 5_000, "num_envs": 8, "obs_shape": (4,), "obs_dtype": np.float32,
         "prioritized": True, "aux_dim": 1},
        {"capacity": 777, "num_envs": 1, "obs_shape": (10, 5), "obs_dtype": np.float32,
         "prioritized": True},
    ],
)  # fmt: skip
def test_estimate_bytes_is_what_the_memory_holds(kwargs):
    assert ReplayMemory.estimate_bytes(**kwargs) == ReplayMemory(**kwargs).nbytes


def test_estimate_bytes_of_the_books_pixel_memory():
    # 50,000 newest frames of 80 x 80 uint8 + 4 + 4 + 1 + 1 + 4 bytes of bookkeeping.
    got = ReplayMemory.estimate_bytes(50_000, 1, (80, 80, 4), np.uint8, frame_stack=4)
    assert got == 50_000 * (6400 + 14)


def test_a_huge_memory_is_refused_before_allocating():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ValueError, match=r"replay_capacity 1,000,000,000,000 needs ~.* GB") as e:
        ReplayMemory(10**12, 8, (80, 80, 4), np.uint8, frame_stack=4)
    assert "GB available" in str(e.value)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024


def test_the_memory_check_compares_the_estimate_with_the_available_memory(monkeypatch):
    import catchrl.envs.sizing

    args = (2_000, 2, (80, 80, 4), np.uint8)
    needed = ReplayMemory.estimate_bytes(*args, frame_stack=4)
    monkeypatch.setattr(catchrl.envs.sizing, "available_memory_bytes", lambda: needed)
    assert ReplayMemory(*args, frame_stack=4).nbytes == needed
    monkeypatch.setattr(catchrl.envs.sizing, "available_memory_bytes", lambda: needed - 1)
    refused = r"replay_capacity 2,000 needs ~0\.0128 GB, more than the 0\.0128 GB available"
    with pytest.raises(ValueError, match=refused):
        ReplayMemory(*args, frame_stack=4)


def test_the_saved_state_holds_only_the_filled_frames():
    mem = ReplayMemory(8 * 5_000, 8, (80, 80, 4), np.uint8, frame_stack=4, n_step=4)
    play_pixels(mem, 8, 100)
    state = mem.state_dict()
    assert state["rewards"].shape == (8, 100)
    assert sum(v.nbytes for v in state.values()) < 8 * 100 * 6400 / 10  # few pixels are lit


def test_per_importance_weights_anneal_beta_to_one():
    mem = ReplayMemory(10, 1, (1,), np.float32, prioritized=True, alpha=1.0, beta=0.4, seed=0)
    scalar_stream(mem, [0.0] * 6, [False, False, False, False, False, True])
    mem.update_priorities(np.arange(6), np.array([1.0, 2.0, 4.0, 1.0, 1.0, 1.0]) - 1e-6)
    for progress, beta in ((0.0, 0.4), (0.5, 0.7), (1.0, 1.0), (3.0, 1.0)):
        batch = mem.sample(200, progress)
        priority = mem._arrays["priority"].reshape(-1)
        p = priority[batch["indices"]] / priority.sum()
        w = (len(mem) * p) ** -beta
        np.testing.assert_allclose(batch["weights"], w / w.max(), rtol=1e-6)
