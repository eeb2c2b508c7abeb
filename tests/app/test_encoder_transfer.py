"""The DQN can start from a pretrained perception encoder, frozen or fine-tuned."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from catchrl.agents.networks import q_output
from catchrl.api import load_agent
from catchrl.benchmarks.agents import module_overrides
from catchrl.cli import main
from catchrl.config import load_config
from catchrl.envs import CatchParams
from catchrl.evaluation import TEST_SEED, evaluate
from catchrl.learners import open_run
from catchrl.supervised.perception import build_perception_model, get_encoder

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


@pytest.fixture(scope="module")
def perception_path(tmp_path_factory):
    model = build_perception_model("small", CatchParams())
    path = tmp_path_factory.mktemp("perception") / "model.keras"
    model.save(path)
    return path


def _encoder_weights(path):
    return keras.saving.load_model(path, compile=False).get_layer("encoder").get_weights()


def _assert_encoder_then_mlp_head(run_dir, perception_path, frozen: bool):
    """The saved Q-network: the encoder (untouched if frozen, moved by training if fine-tuned)
    feeding the MLP's two layers of 128."""
    source = get_encoder(keras.saving.load_model(perception_path, compile=False)).get_weights()
    trained = _encoder_weights(run_dir / "model.keras")
    same = all(np.array_equal(a, b) for a, b in zip(source, trained, strict=True))
    assert same is frozen
    head = keras.saving.load_model(run_dir / "model.keras", compile=False).layers[-1]
    hidden = [layer.units for layer in head.layers if isinstance(layer, keras.layers.Dense)]
    assert hidden[:2] == [128, 128] and len(hidden) == 3


def test_q_network_starts_from_a_tuned_encoder(perception_path, tmp_path):
    run_dir = tmp_path / "run"
    module = ["--set", f"agent.module={f'tuned-encoder:{perception_path}'!r}"]
    assert main(["train", *STEPS, "--run-dir", str(run_dir), *module]) == 0
    _assert_encoder_then_mlp_head(run_dir, perception_path, frozen=False)


def test_a_frozen_encoder_s_features_are_computed_once_and_kept_in_replay(
    perception_path, tmp_path, capsys
):
    run_dir, encoder_path = tmp_path / "frozen", tmp_path / "encoder.keras"
    encoder_path.write_bytes(perception_path.read_bytes())
    frozen = ["--set", f"agent.module={f'encoder:{encoder_path}'!r}", "--set", "run.eval_every=16"]
    assert main(["train", *STEPS, "--run-dir", str(run_dir), *frozen]) == 0
    _assert_encoder_then_mlp_head(run_dir, perception_path, frozen=True)
    encoder = get_encoder(keras.saving.load_model(perception_path, compile=False))
    cfg = load_config(path=run_dir / "config.toml")
    learner = open_run(cfg, tmp_path / "again", progress=False).learner
    width = int(encoder.output_shape[-1])  # the small encoder's 48 features
    assert learner.memory.obs_shape == (width,) and learner.memory.frame_stack == 1
    assert learner.obs.dtype == np.float32 and learner.obs.shape == (cfg.env.num_envs, width)
    frames = learner.base_env.reset(seed=3)[0]
    features = np.asarray(encoder(frames))
    np.testing.assert_allclose(learner.perception.perceive(frames), features, rtol=1e-5, atol=1e-6)
    # the saved model reads frames; its Q-values are the MLP's on the encoder's features
    saved = keras.saving.load_model(run_dir / "model.keras", compile=False)
    assert tuple(saved.input_shape[1:]) == (80, 80, 4)
    q_network = saved.layers[-1]
    np.testing.assert_allclose(
        np.asarray(q_output(saved(frames))),
        np.asarray(q_output(q_network(features))),
        rtol=1e-4,
        atol=1e-5,
    )
    proc = subprocess.run(  # a fresh process loads it (catchrl eval)
        [sys.executable, "-m", "catchrl", "eval", str(run_dir), "--games", "20"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "win rate" in proc.stdout, proc.stderr[-2000:]
    resume = ["train", "--run-dir", str(run_dir), "--resume", "--steps", "1056", "--no-progress"]
    assert main(resume) == 0
    # the checkpoint does not hold the frozen encoder: another one in its file is refused
    keras.utils.set_random_seed(1)
    build_perception_model("small", CatchParams()).save(encoder_path)
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    resume[5] = "1584"
    assert main(resume) == 2
    assert "has other weights than when this run was trained" in capsys.readouterr().err
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before


def test_encoder_for_other_frames_or_obs_is_refused(tmp_path, capsys):
    small = build_perception_model("small", CatchParams(), input_shape=(40, 40, 4))
    path = tmp_path / "p40.keras"
    small.save(path)
    cases = [
        (
            "fast",
            f"encoder:{path}",
            "reads frames of shape (40, 40, 4), the game gives (80, 80, 4)",
        ),
        ("fast-state", f"encoder:{path}", "needs env.obs_type 'pixels'"),
        ("fast", "encoder:/no/such/model.keras", "does not exist"),
    ]
    for i, (preset, module, message) in enumerate(cases):
        argv = ["train", "--preset", preset, *STEPS, "--run-dir", str(tmp_path / str(i))]
        assert main([*argv, "--set", f"agent.module={module!r}"]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("contender", ["dqn-encoder-frozen", "dqn-perceived"])
def test_the_routes_through_a_trained_perception_model_learn_in_a_small_budget(tmp_path, contender):
    """The two routes as ``bench modules`` runs them, on a briefly trained perception model.

    On the book's game their 3 seeds reached 99 % of 1,000 test games in 5-10k steps
    with a model trained for 6 epochs on 600 games (``docs/supervised_results.md``);
    here the perception model sees 200 games for 6 epochs, and the run has 12k steps.
    """
    data, perc = tmp_path / "frames.npz", tmp_path / "perc"
    assert main(["data", "make", "--kind", "frames", "--games", "200", "--out", str(data)]) == 0
    train = ["supervised", "train", "perception", "--data", str(data), "--run-dir", str(perc)]
    assert main([*train, "--epochs", "6", "--quiet"]) == 0
    overrides = [*module_overrides(contender, str(perc)), "run.total_steps=12000"]
    cfg = load_config("fast", None, [*overrides, "run.eval_every=32"])
    result = open_run(cfg, tmp_path / "run", progress=False).run()
    assert result.best is not None and result.best["win_rate"] >= 0.97, result.evaluations[-3:]
    kept = load_agent(tmp_path / "run")
    test = evaluate(kept.policy, games=1000, seed=TEST_SEED, **kept.env_kwargs)
    assert test.win_rate >= 0.95, test.summary()
