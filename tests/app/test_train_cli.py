"""``catchrl train`` / ``eval`` / ``watch`` / ``plot`` end to end, resume, crashes, bad input.

The runs use the ``fast-state`` preset with a small budget so they take seconds; the
shared ``quick_run`` (tests/conftest.py) is the trained run the read-only tests use.
"""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from catchrl.cli import main

QUICK = [
    "--preset",
    "fast-state",
    "--no-progress",
    "--set",
    "agent.observe=300",
    "--set",
    "agent.replay_capacity=5000",
    "--set",
    "run.eval_games=100",
]


def _train(run_dir: Path, steps: int, *extra: str) -> int:
    return main(["train", *QUICK, "--steps", str(steps), "--run-dir", str(run_dir), *extra])


def _weights(run_dir: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(run_dir / "model.keras", compile=False).get_weights()


def _metrics(run_dir: Path) -> np.ndarray:
    lines = (run_dir / "metrics.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    keep = [i for i, c in enumerate(header) if c not in ("steps_per_s", "wall_time")]
    return np.array([[row.split("\t")[i] for i in keep] for row in lines[1:]])


def test_train_writes_the_run_directory(quick_run, capsys):
    names = {p.name for p in quick_run.iterdir()}
    assert {"config.toml", "metrics.tsv", "tb", "checkpoints", "model.keras", "eval.json"} <= names
    assert list((quick_run / "tb").glob("events.out.tfevents.*"))
    metrics = (quick_run / "metrics.tsv").read_text().splitlines()
    assert metrics[0].split("\t")[:3] == ["game", "loss", "wins"]  # the book's columns first
    games = [int(line.split("\t")[0]) for line in metrics[1:]]
    assert games == list(range(1, len(games) + 1)) and len(games) == 1000 // 16 // 33 * 16
    wins = [int(line.split("\t")[2]) for line in metrics[1:]]
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(wins))  # cumulative
    (latest,) = (quick_run / "checkpoints").glob("ckpt-*")  # the newest one is kept
    assert (latest / "manifest.json").is_file()


def test_eval_watch_plot_on_a_trained_run(quick_run, tmp_path, capsys):
    assert main(["eval", str(quick_run), "--games", "200", "--json"]) == 0
    out = capsys.readouterr().out

    result = json.loads(out.strip().splitlines()[-1])
    assert result["games"] == 200 and 0.0 <= result["win_rate"] <= 1.0
    assert result["ci95_low"] <= result["win_rate"] <= result["ci95_high"]
    gif = tmp_path / "agent.gif"
    assert main(["watch", str(quick_run), "--games", "1", "--gif", str(gif)]) == 0
    from PIL import Image

    with Image.open(gif) as image:
        # one frame per step of the one game, then the closing screen (its held copies merge)
        assert image.n_frames == 34
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run: loaded best.keras, the best validation model (")
    assert out[1].endswith(("caught 0/1", "caught 1/1"))
    assert "(78 frames)" in out[2]  # 33 of the game, 45 of the closing screen
    png = tmp_path / "curves.png"
    assert main(["plot", str(quick_run), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_continues_exactly_and_the_seed_decides(tmp_path):
    """Stopped at 500 steps (training from 300) and resumed to 1,000, evaluating every 8 games:
    the same weights and metrics as one 1,000-step run; another seed trains other weights."""
    every = ("--set", "run.eval_every=8")
    assert _train(tmp_path / "whole", 1000, *every) == 0
    assert _train(tmp_path / "parts", 500, *every) == 0
    half = _weights(tmp_path / "parts")
    resume = ["train", "--run-dir", str(tmp_path / "parts"), "--resume", "--steps", "1000"]
    assert main([*resume, "--no-progress"]) == 0
    for wa, wb in zip(_weights(tmp_path / "whole"), _weights(tmp_path / "parts"), strict=True):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(_metrics(tmp_path / "whole"), _metrics(tmp_path / "parts"))
    assert _train(tmp_path / "other", 500, "--seed", "1", *every) == 0
    other = _weights(tmp_path / "other")
    assert not all(np.array_equal(x, y) for x, y in zip(half, other, strict=True))


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    cases = [
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--set", "agent.nope=1"], "unknown key agent.nope"),
        (["train", "--set", "agent.lr=fast"], "agent.lr: expected float"),
        (["train", "--resume"], "--resume needs --run-dir"),
        (["train", "--resume", "--run-dir", str(tmp_path / "none")], "no checkpoint"),
        (["train", "--resume", "--run-dir", str(tmp_path), "--print-config"], "drop --preset"),
        (["eval", str(tmp_path / "missing")], "is neither a file"),
        (["eval", "oracle", "--games", "0"], "--games must be in (0, 2**32 - 1], got 0"),
    ]
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text('[agent]\nbatch_size = "big"\n')
    cases.append((["train", "--config", str(bad_toml)], "agent.batch_size: expected int"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (argv, err)


def test_corrupt_checkpoint_is_refused_and_nothing_is_destroyed(quick_run, tmp_path, capsys):
    run_dir = tmp_path / "copy"
    shutil.copytree(quick_run, run_dir)
    (ckpt,) = (run_dir / "checkpoints").glob("ckpt-*")
    npz = ckpt / "agent.npz"
    npz.write_bytes(npz.read_bytes()[:100])  # truncated
    before = {p: p.stat().st_size for p in run_dir.rglob("*") if p.is_file()}
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--steps", "9000"]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and len(err.strip().splitlines()) == 1
    after = {p: p.stat().st_size for p in run_dir.rglob("*") if p.is_file()}
    assert before == after


def test_checkpoint_of_another_observation_type_is_refused(quick_run, tmp_path, capsys):
    run_dir = tmp_path / "other"
    shutil.copytree(quick_run, run_dir)
    cfg = (run_dir / "config.toml").read_text().replace('obs_type = "state"', 'obs_type = "grid"')
    (run_dir / "config.toml").write_text(cfg.replace("n_step = 16", "n_step = 3"))  # a 9-step game
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--steps", "9000"]) == 2
    err = capsys.readouterr().err
    assert "another setup: env.obs_type is 'state' there but 'grid'" in err
    assert main(["eval", str(quick_run / "model.keras"), "--obs-type", "grid"]) == 2
    assert "takes observations of shape (3,)" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(quick_run, capsys):
    before = (quick_run / "metrics.tsv").read_text()
    assert _train(quick_run, 100) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (quick_run / "metrics.tsv").read_text() == before


def _spawn_training(run_dir: Path, steps: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "catchrl",
        "train",
        *QUICK,
        "--set",
        "run.eval_every=16",
        "--steps",
        str(steps),
        "--run-dir",
        str(run_dir),
    ]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for_checkpoints(run_dir: Path, count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        names = sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*"))
        if names and int(names[-1].split("-")[1][1:]) >= 16 * count:  # ckpt-g<games>-s<steps>
            return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint appeared: {proc.communicate()[0][-2000:]}")


@pytest.mark.faults  # run apart (pytest -m faults), with the other signal tests
def test_kill_9_leaves_a_loadable_checkpoint(tmp_path):
    from catchrl.rundir import RunDir

    run_dir = tmp_path / "killed"
    proc = _spawn_training(run_dir, 200_000)
    _wait_for_checkpoints(run_dir, 2, proc)
    time.sleep(0.37)  # somewhere in the middle of training (maybe mid-checkpoint)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = RunDir(run_dir).latest_checkpoint()
    arrays, state = RunDir.load_checkpoint(latest)
    assert state["games"] >= 32 and "agent" in arrays
    games = state["games"]
    assert (
        main(
            [
                "train",
                "--run-dir",
                str(run_dir),
                "--resume",
                "--steps",
                str(state["steps"] + 600),
                "--no-progress",
            ]
        )
        == 0
    )
    rows = (run_dir / "metrics.tsv").read_text().splitlines()[1:]
    assert [int(r.split("\t")[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) > games


def test_augmented_pixel_training_resumes_exactly_and_is_not_the_plain_run(tmp_path):
    """``agent.augment_shift``: the shifts' generator is checkpointed, and the shifts matter."""
    pixels = [*QUICK, "--preset", "fast", "--set", "agent.replay_capacity=3000"]
    # (the resume raises the budget, which a learning rate decaying over it would follow)
    pixels += ["--set", "run.eval_games=20", "--set", "agent.lr_decay=false"]

    def train(run_dir: Path, steps: int, shift: int) -> int:
        argv = ["train", *pixels, "--steps", str(steps), "--run-dir", str(run_dir)]
        return main([*argv, "--set", f"agent.augment_shift={shift}"])

    assert train(tmp_path / "whole", 960, 4) == 0
    assert train(tmp_path / "parts", 480, 4) == 0
    half = _weights(tmp_path / "parts")  # trained from step 300
    resume = ["train", "--run-dir", str(tmp_path / "parts"), "--resume", "--steps", "960"]
    assert main([*resume, "--no-progress"]) == 0
    for wa, wb in zip(_weights(tmp_path / "whole"), _weights(tmp_path / "parts"), strict=True):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(_metrics(tmp_path / "whole"), _metrics(tmp_path / "parts"))
    assert train(tmp_path / "plain", 480, 0) == 0
    plain = _weights(tmp_path / "plain")
    assert not all(np.array_equal(x, y) for x, y in zip(half, plain, strict=True))
