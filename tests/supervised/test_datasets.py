import dataclasses
import json
import zipfile

import numpy as np
import pytest

from catchrl.agents.scripted import OraclePolicy, landing_x
from catchrl.envs import CatchParams, CatchVectorEnv, FrameRenderer
from catchrl.envs.observations import state_features
from catchrl.supervised import datasets as D
from catchrl.supervised.sequence import landing_targets
from catchrl.supervised.train import FrameStacks, split_games
from tests.envs.test_render import draw_many


def test_frames_equal_a_rerender_of_their_labels(drift_frames_ds):
    ds = drift_frames_ds
    renderer = FrameRenderer(ds.params, ds.config.frame_size)
    rng = np.random.default_rng(0)
    g = rng.integers(0, ds.num_games, 50)
    t = rng.integers(0, ds.steps + 1, 50)
    s = ds.states[g, t].astype(np.int64)
    np.testing.assert_array_equal(draw_many(renderer, s[:, 0], s[:, 1], s[:, 3]), ds.frames[g, t])


def test_replaying_the_actions_reproduces_observations_and_states(drift_frames_ds):
    """The env, seeded per game and fed the recorded actions, sees exactly the dataset."""
    ds = drift_frames_ds
    env = CatchVectorEnv(ds.num_games, obs_type="pixels", params=ds.params)
    obs, _ = env.reset(seed=ds.config.seed)
    games = np.arange(ds.num_games)
    oracle = OraclePolicy(ds.params)
    for t in range(ds.steps + 1):
        b = env.batch
        np.testing.assert_array_equal(
            ds.states[:, t], np.stack([b.ball_x, b.ball_y, b.ball_vx, b.paddle_x], -1)
        )
        np.testing.assert_array_equal(ds.oracle_actions[:, t], oracle.act_state(b))
        np.testing.assert_array_equal(D.frame_stacks(ds.frames, games, np.full_like(games, t)), obs)
        if t < ds.steps:
            obs, r, *_ = env.step(ds.actions[:, t].astype(np.int64))
            np.testing.assert_array_equal(ds.rewards[:, t], r)


def test_same_seed_same_data_other_seed_other_data():
    a = D.make_dataset("trajectories", games=7, seed=5, num_envs=3)
    b = D.make_dataset("trajectories", games=7, seed=5, num_envs=7)
    c = D.make_dataset("trajectories", games=7, seed=6, num_envs=3)
    for name in ("states", "actions", "oracle_actions", "rewards"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.states, c.states)
    assert a.frames is None


def test_random_prob_zero_is_the_oracle_and_it_wins_every_game():
    ds = D.make_dataset("expert", games=20, seed=0, random_prob=(0.0, 0.0))
    np.testing.assert_array_equal(ds.actions, ds.oracle_actions[:, :-1])
    assert (ds.rewards.sum(axis=1) == 1.0).all()


def test_varied_play_moves_the_paddle_everywhere(frames_ds):
    px = frames_ds.states[..., 3]
    assert px.min() <= 60 and px.max() >= frames_ds.params.paddle_max_x - 60
    assert len(np.unique(px)) >= 15


def test_landing_targets_match_the_scripted_forecast(drift_frames_ds):
    ds = drift_frames_ds
    landing, caught = landing_targets(ds)
    s = ds.states.astype(np.int64)
    p = ds.params
    flying = s[..., 1] < p.catch_y  # observations of a ball still in the air
    expect = landing_x(p, s[..., 0], s[..., 1], s[..., 2])
    np.testing.assert_array_equal(landing[flying], expect[flying])
    landed = ~flying
    np.testing.assert_array_equal(landing[landed], s[..., 0][landed])
    # two balls per game: the last observation's ball is the game's last decision
    np.testing.assert_array_equal(caught[:, -1], ds.rewards[:, -1] > 0)
    assert (caught[:, 0] == (ds.rewards[:, : p.steps_per_ball].sum(1) > 0)).all()


def test_perception_targets_are_the_state_observation(drift_frames_ds):
    ds = drift_frames_ds
    s = ds.states[0].astype(np.int64)
    np.testing.assert_array_equal(
        D.perception_targets(ds.params, ds.states[0]),
        state_features(ds.params, s[:, 0], s[:, 1], s[:, 2], s[:, 3]),
    )


def test_save_load_round_trip(tmp_path, drift_frames_ds):
    path = tmp_path / "d.npz"
    D.save_dataset(drift_frames_ds, path)
    back = D.load_dataset(path, kind="frames")
    assert back.config == drift_frames_ds.config
    for name in ("states", "actions", "oracle_actions", "rewards", "frames"):
        np.testing.assert_array_equal(getattr(back, name), getattr(drift_frames_ds, name))


def test_files_of_another_version_or_kind_are_refused(tmp_path, frames_ds):
    path = tmp_path / "d.npz"
    D.save_dataset(frames_ds, path)
    with pytest.raises(D.DatasetError, match="a 'frames' dataset, expected 'trajectories'"):
        D.load_dataset(path, kind="trajectories")
    with np.load(path) as f:
        arrays = dict(f)
    cfg = json.loads(str(arrays["config"]))
    cfg["format_version"] = D.FORMAT_VERSION + 1
    arrays["config"] = np.array(json.dumps(cfg))
    old = tmp_path / "old.npz"
    np.savez_compressed(old, **arrays)
    with pytest.raises(D.DatasetError, match=f"format version {D.FORMAT_VERSION + 1}"):
        D.load_dataset(old)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(D.DatasetError, match="not a catchrl dataset"):
        D.load_dataset(other)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset kind 'movies'"):
        D.make_dataset("movies", games=1)
    with pytest.raises(ValueError, match="random_prob"):
        D.make_dataset("frames", games=1, random_prob=(0.5, 0.2))
    with pytest.raises(ValueError, match=r"\.npz"):
        D.save_dataset(D.make_dataset("trajectories", games=1), "/tmp/x.dat")


def test_config_json_round_trip():
    cfg = D.DatasetConfig(
        kind="expert",
        games=3,
        seed=9,
        params=dataclasses.asdict(CatchParams(drift=2)),
        random_prob=(0.1, 0.2),
    )
    assert D.DatasetConfig.from_json(cfg.to_json()) == cfg


def test_split_games_is_disjoint_and_complete():
    train, val = split_games(50, 0.2, seed=1)
    assert len(val) == 10 and not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(50))


def test_frame_stacks_yield_the_stacks_and_targets(frames_ds):
    targets = D.perception_targets(frames_ds.params, frames_ds.states)
    games = np.array([2, 7])
    data = FrameStacks(frames_ds, targets, games, 34, batch_size=16)
    assert len(data) == 5  # 68 observations
    xs, ys = zip(*[data[i] for i in range(len(data))], strict=True)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.dtype == np.uint8 and x.shape == (2 * 34, 80, 80, 4)
    g = np.repeat(games, 34)
    t = np.tile(np.arange(34), 2)
    np.testing.assert_array_equal(x, D.frame_stacks(frames_ds.frames, g, t))
    np.testing.assert_array_equal(y, targets[g, t])
    shuffled = FrameStacks(frames_ds, targets, games, 34, batch_size=200, shuffle=True)
    (_, first), (_, second) = shuffled[0], (shuffled.on_epoch_end(), shuffled[0])[1]
    assert sorted(map(tuple, first)) == sorted(map(tuple, y))
    assert not np.array_equal(first, second)  # reshuffled for the next epoch


# --- checked at the door --------------------------------------------------------


class _Payload:
    """Unpickling this touches a file: the proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _arrays(ds):
    return {
        "states": ds.states,
        "actions": ds.actions,
        "oracle_actions": ds.oracle_actions,
        "rewards": ds.rewards,
        "frames": ds.frames,
        "config": np.array(ds.config.to_json()),
    }


def _member(z, name, shape, dtype, data=b""):
    """Write ``name.npy`` whose header declares ``shape``/``dtype`` and whose data is ``data``."""
    with z.open(f"{name}.npy", "w", force_zip64=True) as f:
        header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        if isinstance(data, int):  # that many zero bytes, written in chunks
            chunk = bytes(1 << 22)
            for _ in range(data // len(chunk)):
                f.write(chunk)
        else:
            f.write(data)


@pytest.fixture(scope="module")
def small_frames():
    return D.make_dataset("frames", games=2, seed=0)


def _bad_file(tmp_path, small_frames, fault):
    arrays = _arrays(small_frames)
    path = tmp_path / f"{fault}.npz"
    if fault == "pickle":
        arrays["states"] = np.array([_Payload(tmp_path / "pwned")], dtype=object)
    elif fault == "nan":
        arrays["rewards"] = arrays["rewards"].copy()
        arrays["rewards"][0, 3] = np.nan
    elif fault == "float frames":
        arrays["frames"] = arrays["frames"].astype(np.float32)
    elif fault == "fewer games":
        arrays["states"] = arrays["states"][:1]
    elif fault in ("config games", "config stack"):
        cfg = json.loads(str(arrays["config"]))
        cfg |= {"games": 10**9} if fault == "config games" else {"frame_stack": 0}
        arrays["config"] = np.array(json.dumps(cfg))
    elif fault == "action 7":
        arrays["actions"] = np.full_like(arrays["actions"], 7)
    elif fault in ("truncated", "empty"):
        np.savez_compressed(path, **arrays)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if fault == "truncated" else b"")
        return path
    elif fault == "short data":
        with zipfile.ZipFile(path, "w") as z:
            for name, a in arrays.items():
                data = a.tobytes()[: a.nbytes // 2] if name == "frames" else a.tobytes()
                _member(z, name, a.shape, a.dtype, data)
        return path
    np.savez_compressed(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("pickle", r"states is object \(1,\), but its config"),
        ("nan", r"rewards must be -1, 0 or \+1 \(found nan\)"),
        ("float frames", r"frames is float32 \(2, 34, 80, 80\), but its config"),
        ("fewer games", r"states is int16 \(1, 34, 4\), but its config \(games=2"),
        ("config games", r"states is int16 \(2, 34, 4\).*declares int16 \(1000000000, 34, 4\)"),
        ("config stack", "bad dataset config: frame_stack must be an int >= 1, got 0"),
        ("action 7", "actions must be 0, 1 or 2"),
        ("truncated", "not a readable .npz file"),
        ("empty", "not a readable .npz file"),
        ("short data", r"frames declares uint8 \(2, 34, 80, 80\) .* but holds 217,600$"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, small_frames, fault, message):
    path = _bad_file(tmp_path, small_frames, fault)
    with pytest.raises(D.DatasetError, match=message) as e:
        D.load_dataset(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    assert not (tmp_path / "pwned").exists()  # the pickle never ran
