"""The supervised modules inside the DQN: the auxiliary landing head and perceived-state play."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from catchrl.agents.dqn import DQNAgent
from catchrl.agents.networks import build_q_network, q_output
from catchrl.agents.replay import ReplayMemory
from catchrl.agents.scripted import landing_x
from catchrl.api import load_agent
from catchrl.cli import main
from catchrl.config import AgentConfig, ConfigError, load_config
from catchrl.envs import CatchParams, CatchVectorEnv
from catchrl.learners import open_run
from catchrl.supervised.perception import build_perception_model

STEPS = [
    "--steps",
    "528",  # 33 steps in each of 16 games, training from step 300
    "--no-progress",
    "--set",
    "agent.observe=300",
    "--set",
    "run.eval_games=0",
    "--set",
    "agent.replay_capacity=4000",
]


# -- the replay memory carries the labels ---------------------------------------------------


def test_replay_stores_and_samples_aux_labels_with_their_observation():
    mem = ReplayMemory(400, 2, (3,), np.float32, n_step=3, aux_dim=1, seed=0)
    for t in range(60):
        obs = np.array([[t, 0, 0], [t, 1, 0]], np.float32)
        mem.add(
            obs,
            np.zeros(2, int),
            np.zeros(2),
            np.zeros(2, bool),
            np.zeros(2, bool),
            aux=obs[:, :1] * 10 + obs[:, 1:2],
        )
    batch = mem.sample(64)
    assert batch["aux"].shape == (64, 1) and batch["aux"].dtype == np.float32
    expected = batch["obs"][:, :1] * 10 + batch["obs"][:, 1:2]
    np.testing.assert_array_equal(batch["aux"], expected)  # the label of obs, not next_obs
    copy = ReplayMemory(400, 2, (3,), np.float32, n_step=3, aux_dim=1, seed=0)
    copy.load_state_dict(mem.state_dict())
    np.testing.assert_array_equal(copy.sample(8)["aux"], mem.sample(8)["aux"])


def test_replay_rejects_missing_or_unexpected_aux():
    mem = ReplayMemory(100, 2, (3,), np.float32, aux_dim=1)
    args = (
        np.zeros((2, 3), np.float32),
        np.zeros(2, int),
        np.zeros(2),
        np.zeros(2, bool),
        np.zeros(2, bool),
    )
    with pytest.raises(ValueError, match=r"aux must have shape \(2, 1\).*, got None"):
        mem.add(*args)
    with pytest.raises(ValueError, match=r"got \(2,\)"):
        mem.add(*args, aux=np.zeros(2))
    with pytest.raises(ValueError, match="none when aux_dim is 0"):
        ReplayMemory(100, 2, (3,), np.float32).add(*args, aux=np.zeros((2, 1)))
    other = ReplayMemory(100, 2, (3,), np.float32)
    with pytest.raises(ValueError, match="built with"):
        other.load_state_dict(mem.state_dict())


# -- the DQN trains the head -------------------------------------------------------------------


def _batch(rng, n=64):
    obs = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    return {
        "obs": obs,
        "actions": rng.integers(0, 3, n),
        "rewards": np.zeros(n, np.float32),
        "next_obs": obs,
        "discounts": np.zeros(n, np.float32),
        "weights": np.ones(n, np.float32),
        "aux": obs[:, :1].copy(),
    }


def test_aux_loss_teaches_the_landing_head_and_acting_uses_q_only():
    rng = np.random.default_rng(0)
    model = build_q_network("mlp", (3,), landing_head=True, seed=0)
    agent = DQNAgent(model, AgentConfig(lr=3e-3), seed=0)
    batch = _batch(rng)

    def landing_error():
        return float(np.abs(np.asarray(model(batch["obs"])[1])[:, 0] - batch["aux"][:, 0]).mean())

    before = landing_error()
    for _ in range(150):
        agent.train_step(batch)
    assert landing_error() < 0.2 * before  # the head learnt the label (here: ball x)
    assert agent.act(batch["obs"], 0.0).shape == (64,)
    np.testing.assert_allclose(
        agent.q_values(batch["obs"]), q_output(model(batch["obs"])), rtol=1e-5, atol=1e-6
    )
    without = {k: v for k, v in batch.items() if k != "aux"}
    with pytest.raises(ValueError, match="needs 'aux' labels"):
        agent.train_step(without)


def test_trainer_stores_the_simulators_landing_labels(tmp_path):
    cfg = load_config(
        "fast-state",
        None,
        [
            "agent.module=landing-head",
            "env.drift=5",
            "run.total_steps=660",
            "agent.observe=10000",
            "run.eval_games=0",
        ],
    )
    trainer = open_run(cfg, tmp_path / "run", progress=False)
    p = trainer.learner.base_env.params
    trainer.run()
    mem = trainer.learner.memory
    assert mem.aux_dim == 1 and len(mem) > 0
    # Each stored label is the landing x of the state it is stored with (the state obs
    # holds ball x / width, ball y / height and x-speed / drift).
    batch = mem.sample(256)
    obs = batch["obs"].astype(np.float64)
    x, y = np.rint(obs[:, 0] * p.width), np.rint(obs[:, 1] * p.height)
    vx = np.rint(obs[:, 3] * p.drift)
    want = landing_x(p, x.astype(np.int64), y.astype(np.int64), vx.astype(np.int64)) / p.width
    np.testing.assert_allclose(batch["aux"][:, 0], want, atol=1e-6)
    assert np.any(np.abs(batch["aux"][:, 0] - obs[:, 0]) > 0.01)  # drift: not straight down


def test_train_cli_with_the_landing_head_then_eval(tmp_path):
    run_dir = tmp_path / "aux"
    assert (
        main(["train", *STEPS, "--run-dir", str(run_dir), "--set", "agent.module=landing-head"])
        == 0
    )
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    assert [o.shape[-1] for o in model.outputs] == [3, 1]
    policy = load_agent(run_dir)
    obs = np.random.default_rng(0).integers(0, 256, (2, *policy.obs_shape), dtype=np.uint8)
    np.testing.assert_allclose(
        policy.q_values(obs), np.asarray(q_output(model(obs))), rtol=1e-5, atol=1e-6
    )  # the policy acts on the Q-values
    assert main(["eval", str(run_dir), "--games", "20"]) == 0


def test_resume_with_the_landing_head_is_exact(tmp_path):
    """The labels in replay survive a checkpoint: stop + resume = one uninterrupted run."""
    import keras as k

    def train(run_dir, steps):
        return main(
            [
                "train",
                "--preset",
                "fast-state",
                "--steps",
                str(steps),
                "--no-progress",
                "--run-dir",
                str(run_dir),
                "--set",
                "agent.module=landing-head",
                "--set",
                "env.drift=5",
                "--set",
                "agent.observe=300",
                "--set",
                "run.eval_games=0",
            ]
        )

    assert train(tmp_path / "whole", 1056) == 0
    assert train(tmp_path / "parts", 528) == 0  # trained from step 300
    assert (
        main(
            [
                "train",
                "--run-dir",
                str(tmp_path / "parts"),
                "--resume",
                "--steps",
                "1056",
                "--no-progress",
            ]
        )
        == 0
    )
    whole, parts = (
        k.saving.load_model(tmp_path / name / "model.keras", compile=False)
        for name in ("whole", "parts")
    )
    for a, b in zip(whole.get_weights(), parts.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# -- playing pixels from the perceived state ------------------------------------------------


@pytest.fixture(scope="module")
def perception_path(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("perception") / "model.keras"
    build_perception_model("small", CatchParams()).save(path)
    return path


def _perceived(path) -> list[str]:
    return ["--set", f"agent.module={'perception:' + str(path)!r}", "--set", "agent.network='mlp'"]


def test_dqn_plays_pixels_from_the_perceived_state(perception_path, tmp_path):
    run_dir = tmp_path / "perceived"
    assert (
        main(
            [
                "train",
                *STEPS,
                "--run-dir",
                str(run_dir),
                *_perceived(perception_path),
                "--set",
                "run.eval_every=16",
            ]
        )
        == 0
    )
    trainer_model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    assert tuple(trainer_model.input_shape[1:]) == (80, 80, 4)  # reads frames: eval/watch work
    cfg = load_config(path=run_dir / "config.toml")
    trainer = open_run(cfg, tmp_path / "again", progress=False)
    assert trainer.learner.memory.obs_shape == (3,) and trainer.learner.memory.frame_stack == 1
    # the agent sees the clipped perception of the game's frames, not the true state
    perception = keras.saving.load_model(perception_path, compile=False)
    space = trainer.learner.env.single_observation_space
    game = CatchVectorEnv(cfg.env.num_envs, autoreset_mode="same_step", **cfg.env.game_kwargs())
    first_frames = game.reset(seed=cfg.run.seed)[0]
    np.testing.assert_allclose(
        trainer.learner.obs,
        np.clip(np.asarray(perception(first_frames)), space.low, space.high),
        rtol=1e-5,
        atol=1e-6,
    )
    assert trainer.learner.obs.dtype == np.float32
    # the saved chain gives the Q-values of the MLP on the clipped perception
    frames = trainer.learner.base_env.reset(seed=3)[0]
    chained = np.asarray(q_output(trainer_model(frames)))
    state = np.clip(np.asarray(perception(frames)), space.low, space.high)
    q_network = trainer_model.layers[-1]
    np.testing.assert_allclose(
        chained, np.asarray(q_output(q_network(state))), rtol=1e-4, atol=1e-5
    )
    # a fresh process (no supervised module imported yet) loads it too
    proc = subprocess.run(
        [sys.executable, "-m", "catchrl", "eval", str(run_dir), "--games", "20"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "win rate" in proc.stdout, proc.stderr[-2000:]
    assert (
        main(["train", "--run-dir", str(run_dir), "--resume", "--steps", "1056", "--no-progress"])
        == 0
    )


def test_perception_config_errors(perception_path, tmp_path, capsys):
    with pytest.raises(ConfigError, match="perception .* needs agent.network 'mlp'"):
        load_config("fast", None, [f"agent.module={'perception:' + str(perception_path)!r}"])
    drift = build_perception_model("small", CatchParams(drift=3))
    path = tmp_path / "drift.keras"
    drift.save(path)
    assert main(["train", *STEPS, "--run-dir", str(tmp_path / "a"), *_perceived(path)]) == 2
    assert "outputs 4 values, but this game's state has 3" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                *STEPS,
                "--run-dir",
                str(tmp_path / "b"),
                *_perceived(tmp_path / "none.keras"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_bench_modules_bad_input_is_one_line(tmp_path, capsys):
    out = ["--out", str(tmp_path / "m")]
    assert main(["bench", "modules", "--contenders", "dqn-nope", *out]) == 2
    assert "invalid choice: 'dqn-nope'" in capsys.readouterr().err
    assert main(["bench", "modules", "--contenders", "dqn-encoder", *out]) == 2
    assert "dqn-encoder needs --perception" in capsys.readouterr().err
    assert main(["bench", "modules", "--perception", str(tmp_path / "none"), *out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # nothing ran
