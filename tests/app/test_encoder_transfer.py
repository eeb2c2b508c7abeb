"""The DQN can start from a pretrained perception encoder, frozen or fine-tuned."""

import keras
import numpy as np
import pytest

from catchrl.cli import main
from catchrl.envs import CatchParams
from catchrl.supervised.perception import build_perception_model, get_encoder

STEPS = [
    "--steps",
    "1056",
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
    model = keras.saving.load_model(path, compile=False)
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert len(nested) == 1, [layer.name for layer in model.layers]
    return nested[0].get_weights()


@pytest.mark.parametrize("trainable", [False, True])
def test_q_network_starts_from_the_encoder(perception_path, tmp_path, trainable):
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "train",
                *STEPS,
                "--run-dir",
                str(run_dir),
                "--set",
                f"agent.encoder={str(perception_path)!r}",
                "--set",
                f"agent.encoder_trainable={str(trainable).lower()}",
            ]
        )
        == 0
    )
    source = get_encoder(keras.saving.load_model(perception_path, compile=False)).get_weights()
    trained = _encoder_weights(run_dir / "model.keras")
    same = all(np.array_equal(a, b) for a, b in zip(source, trained, strict=True))
    assert same is (not trainable)  # frozen: untouched; fine-tuned: moved by training


def test_encoder_for_other_frames_or_obs_is_refused(tmp_path, capsys):
    small = build_perception_model("small", CatchParams(), input_shape=(40, 40, 4))
    path = tmp_path / "p40.keras"
    small.save(path)
    assert (
        main(
            [
                "train",
                *STEPS,
                "--run-dir",
                str(tmp_path / "a"),
                "--set",
                f"agent.encoder={str(path)!r}",
            ]
        )
        == 2
    )
    assert (
        "reads frames of shape (40, 40, 4), the game gives (80, 80, 4)" in capsys.readouterr().err
    )
    assert (
        main(
            [
                "train",
                "--preset",
                "fast-state",
                *STEPS,
                "--run-dir",
                str(tmp_path / "b"),
                "--set",
                f"agent.encoder={str(path)!r}",
            ]
        )
        == 2
    )
    assert "needs env.obs_type 'pixels'" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                *STEPS,
                "--run-dir",
                str(tmp_path / "c"),
                "--set",
                "agent.encoder='/no/such/model.keras'",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
