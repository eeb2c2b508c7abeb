"""`catchrl train --algo rllib-*` end to end on a real local Ray: learning, run dir,
eval/watch/bench loading, exact resume, remote EnvRunners, pixels, bad input.

Runs in the one virtualenv (`.[all]`); skipped where Ray's RLlib is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tomllib

pytest.importorskip("ray.rllib")

from catchrl.api import load_agent
from catchrl.cli import main
from catchrl.evaluation import TEST_SEED, evaluate
from catchrl.rundir import METRIC_COLUMNS, RunDir


def _train(run_dir: Path, algo: str, steps: int, *extra: str, preset: str = "fast-state") -> int:
    return main(
        [
            "train",
            "--algo",
            algo,
            "--preset",
            preset,
            "--steps",
            str(steps),
            "--run-dir",
            str(run_dir),
            "--no-progress",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RLlib PPO on catchrl/CatchState-v0 until 99 % on 1,000 validation games (<= 40k steps)."""
    run_dir = tmp_path_factory.mktemp("rllib") / "ppo"
    code = _train(
        run_dir,
        "rllib-ppo",
        40_000,
        "--set",
        "run.eval_every=64",
        "--set",
        "run.eval_games=1000",
        "--set",
        "run.target_win_rate=0.99",
    )
    assert code == 0
    return run_dir


@pytest.mark.timeout(1200)
def test_rllib_ppo_beats_95_percent_on_the_test_games(ppo_run: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["eval", str(ppo_run), "--games", "1000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["games"] == 1000
    assert result["win_rate"] > 0.95, result
    # the run's final evaluation is the same harness on the same test games
    assert json.loads((ppo_run / "eval.json").read_text())["wins"] == result["wins"]
    loaded = load_agent(ppo_run)
    again = evaluate(loaded.policy, games=1000, seed=TEST_SEED, **loaded.env_kwargs)
    assert again.wins == result["wins"]


def test_run_directory_is_every_learners(ppo_run: Path) -> None:
    for name in ("config.toml", "metrics.tsv", "model-rllib.npz", "eval.json", "evals.json"):
        assert (ppo_run / name).is_file(), name
    assert any((ppo_run / "tb").iterdir())
    cfg = tomllib.loads((ppo_run / "config.toml").read_text())
    assert cfg["algo"] == "rllib-ppo" and cfg["rllib"]["num_epochs"] == 10
    m = RunDir(ppo_run).read_metrics()
    assert tuple(m) == METRIC_COLUMNS
    games = len(m["game"])
    assert m["game"].tolist() == list(range(1, games + 1))  # one row per game
    assert m["steps"][-1] == 33 * games  # every game is 33 steps: none lost, none doubled
    evals = json.loads((ppo_run / "evals.json").read_text())
    assert evals[-1]["win_rate"] >= 0.99  # the target stopped it
    assert RunDir(ppo_run).latest_checkpoint() is not None


def test_watch_plays_the_rllib_agent_headless(ppo_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("imageio")
    gif = tmp_path / "agent.gif"
    assert main(["watch", str(ppo_run), "--games", "1", "--gif", str(gif)]) == 0
    assert gif.stat().st_size > 0


def _metrics_without_time(run_dir: Path) -> dict[str, np.ndarray]:
    m = RunDir(run_dir).read_metrics()
    return {k: v for k, v in m.items() if k not in ("steps_per_s", "wall_time")}


@pytest.mark.timeout(900)
def test_resume_continues_exactly(tmp_path: Path) -> None:
    # 4 iterations straight, against 2 then 2 more after --resume (a new Algorithm)
    whole, split = tmp_path / "whole", tmp_path / "split"
    opts = ("--set", "run.eval_every=0", "--set", "run.eval_games=50")
    assert _train(whole, "rllib-ppo", 2112, *opts) == 0
    assert _train(split, "rllib-ppo", 1056, *opts) == 0
    assert main(["train", "--run-dir", str(split), "--resume", "--steps", "2112"]) == 0
    a, b = _metrics_without_time(whole), _metrics_without_time(split)
    assert len(a["game"]) == 64
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    with np.load(whole / "model-rllib.npz") as x, np.load(split / "model-rllib.npz") as y:
        assert x.files == y.files
        for k in x.files:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("algo", ["rllib-dqn", "rllib-appo"])
def test_dqn_and_appo_train_save_and_load(algo: str, tmp_path: Path, capsys) -> None:
    run = tmp_path / algo
    assert _train(run, algo, 1056, "--set", "run.eval_every=0", "--set", "run.eval_games=50") == 0
    m = RunDir(run).read_metrics()
    games = len(m["game"])
    assert games >= 32 and m["game"].tolist() == list(range(1, games + 1))
    assert m["steps"][-1] == 33 * games
    loaded = load_agent(run)
    obs = np.random.default_rng(0).random((5, 3), dtype=np.float32)
    actions = loaded.policy(obs, None)
    assert actions.shape == (5,) and set(actions.tolist()) <= {0, 1, 2}
    if algo == "rllib-dqn":
        q = loaded.q_values(obs)
        assert q.shape == (5, 3) and np.array_equal(actions, q.argmax(axis=1))
        eps = RunDir(run).read_metrics()["epsilon"]
        assert eps[0] > eps[-1]  # ε decays over the run
    else:
        assert loaded.q_values is None
    capsys.readouterr()
    assert main(["eval", str(run), "--games", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["games"] == 50


@pytest.mark.timeout(900)
def test_pixels_train_with_the_cnn(tmp_path: Path) -> None:
    run = tmp_path / "pixels"
    extra = ("--set", "run.eval_every=0", "--set", "run.eval_games=20")
    assert _train(run, "rllib-ppo", 528, *extra, preset="fast") == 0
    loaded = load_agent(run)
    assert loaded.env_kwargs["obs_type"] == "pixels"
    with np.load(run / "model-rllib.npz") as f:
        convs = [k for k in f.files if f[k].ndim == 4]
    assert len(convs) == 3  # the three conv layers sized for 80 x 80 x 4
    result = evaluate(loaded.policy, games=20, **loaded.env_kwargs)
    assert result.games == 20


@pytest.mark.timeout(900)
def test_remote_env_runner_plays_the_registered_game(tmp_path: Path) -> None:
    run = tmp_path / "remote"
    extra = ("--set", "rllib.num_env_runners=2", "--set", "run.eval_every=0")
    assert _train(run, "rllib-ppo", 528, *extra, "--set", "run.eval_games=20") == 0
    m = RunDir(run).read_metrics()
    assert m["game"].tolist() == list(range(1, 17))  # 2 actors x 8 games, one row each
    assert m["steps"][-1] == 528


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("rllib.no_such_option=1", "rllib.no_such_option"),
        ("rllib.lrr=1e-3", "did you mean 'lr'?"),
        ("rllib.num_env_runners=3", "num_env_runners"),
        ("rllib.model={no_such_field=1}", "argument 'no_such_field'"),
        ("rllib.games_per_iteration=0", "games_per_iteration"),
    ],
)
def test_bad_rllib_settings_are_one_line_and_touch_nothing(
    setting: str, needle: str, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "bad"
    assert _train(run, "rllib-ppo", 500, "--set", setting) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not run.exists()


def test_unknown_rllib_algo_is_refused(tmp_path: Path, capsys) -> None:
    assert _train(tmp_path / "x", "rllib-sac", 500) == 2
    assert "rllib-ppo" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.faults
@pytest.mark.timeout(900)
def test_sigterm_stops_with_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "signalled"
    cmd = [sys.executable, "-m", "catchrl", "train", "--algo", "rllib-ppo", "--preset"]
    cmd += ["fast-state", "--steps", "40000", "--run-dir", str(run), "--no-progress"]
    cmd += ["--set", "run.eval_every=16"]  # a checkpoint every 16 games
    cmd += ["--set", "run.eval_games=50", "--set", "run.target_win_rate=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not (run.exists() and RunDir(run).latest_checkpoint() is not None):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "resume with" in out and "--sb3" not in out  # RLlib's checkpoints are not pickles
    stopped = RunDir(run).read_metrics()
    assert 0 < len(stopped["game"]) < 40_000 // 33
    assert main(["train", "--run-dir", str(run), "--resume", "--steps", "2112"]) == 0
    m = RunDir(run).read_metrics()
    games = len(m["game"])
    assert m["game"].tolist() == list(range(1, games + 1)) and m["steps"][-1] == 33 * games
    assert (run / "model-rllib.npz").is_file()
