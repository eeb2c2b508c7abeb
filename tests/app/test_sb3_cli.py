"""`catchrl train --algo sb3-*` end to end: learning, run dir, eval/watch, errors.

A signal mid-run and the exact resume after it: tests/app/test_run_faults.py (`-m faults`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")

from catchrl.cli import main
from catchrl.rundir import METRIC_COLUMNS, RunDir

ROOT = Path(__file__).resolve().parents[2]


def _train(run_dir: Path, algo: str, steps: int, *extra: str) -> int:
    return main(
        [
            "train",
            "--algo",
            algo,
            "--preset",
            "fast-state",
            "--steps",
            str(steps),
            "--run-dir",
            str(run_dir),
            "--no-progress",
            "--set",
            "run.eval_games=500",
            "--set",
            "run.eval_every=320",  # (as the preset had: the layout test counts the budget's games)
            "--set",
            "run.target_win_rate=0",
            *extra,
        ]
    )


STEPS = {"sb3-dqn": 15_000, "sb3-ppo": 4_224}
"""The DQN learns in 15,000 steps; the PPO run is 4 evaluations of 32 games."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An SB3 DQN and PPO trained on state observations (seed 0)."""
    root = tmp_path_factory.mktemp("sb3runs")
    assert _train(root / "dqn", "sb3-dqn", STEPS["sb3-dqn"]) == 0
    every = ("--set", "run.eval_every=32")
    assert _train(root / "ppo", "sb3-ppo", STEPS["sb3-ppo"], *every) == 0
    return {"sb3-dqn": root / "dqn", "sb3-ppo": root / "ppo"}


def test_trained_dqn_beats_random_clearly(
    trained: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    run_dir = trained["sb3-dqn"]
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--sb3", "--games", "500", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["games"] == 500
    assert result["win_rate"] >= 0.5, result  # random play wins ~17 %
    saved = json.loads((run_dir / "eval.json").read_text())
    assert saved["wins"] == result["wins"]  # the trainer's final eval: same harness, same games


@pytest.mark.parametrize("algo", ["sb3-dqn", "sb3-ppo"])
def test_run_directory_layout(trained: dict[str, Path], algo: str) -> None:
    run_dir = trained[algo]
    for name in ("config.toml", "metrics.tsv", "model.zip", "eval.json", "best.zip", "best.json"):
        assert (run_dir / name).is_file(), name
    # The kept model is the best validation one; the final evaluation plays it on test games.
    best = json.loads((run_dir / "best.json").read_text())
    evals = json.loads((run_dir / "evals.json").read_text())
    assert best["win_rate"] == max(e["win_rate"] for e in evals)
    assert best["steps"] == max(e["steps"] for e in evals if e["win_rate"] == best["win_rate"])
    final = json.loads((run_dir / "eval.json").read_text())
    assert final["model"] == "best.zip" and final["split"] == "test"
    assert any((run_dir / "tb").iterdir())
    text = (run_dir / "config.toml").read_text()
    assert f'algo = "{algo}"' in text and "[sb3]" in text and 'policy = "MlpPolicy"' in text
    m = RunDir(run_dir).read_metrics()
    assert tuple(m) == METRIC_COLUMNS
    assert m["game"].tolist() == list(range(1, len(m["game"]) + 1))  # one row per game
    assert len(m["game"]) >= STEPS[algo] // 33 - 16  # whole games only: the budget ends mid-game
    assert m["wins"][-1] == (m["reward"] > 0).sum()
    ckpt = RunDir(run_dir).latest_checkpoint()
    arrays, state = RunDir.load_checkpoint(ckpt)
    assert state["config"]["algo"] == algo and state["games"] == len(m["game"])
    assert ("sb3_replay" in arrays) == (algo == "sb3-dqn")


def test_watch_writes_a_gif_with_q_values(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("imageio")
    gif = tmp_path / "dqn.gif"
    assert main(["watch", str(trained["sb3-dqn"]), "--sb3", "--games", "1", "--gif", str(gif)]) == 0
    assert gif.stat().st_size > 1000
    assert "caught" in capsys.readouterr().out


def test_plot_reads_sb3_runs(trained: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    assert main(["plot", str(trained["sb3-dqn"]), str(trained["sb3-ppo"]), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_sb3_file_needs_explicit_consent(
    trained: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    assert main(["eval", str(trained["sb3-ppo"] / "model.zip"), "--games", "10"]) == 2
    assert "unpickles" in capsys.readouterr().err


def test_print_config_shows_the_merged_defaults(capsys: pytest.CaptureFixture) -> None:
    assert (
        main(["train", "--algo", "sb3-ppo", "--print-config", "--set", "sb3.learning_rate=3e-4"])
        == 0
    )
    out = capsys.readouterr().out
    assert 'algo = "sb3-ppo"' in out and "learning_rate = 0.0003" in out
    assert 'policy = "CnnPolicy"' in out and "n_steps = 128" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algo", "sb3-sac"], "invalid choice: 'sb3-sac'"),
        (
            ["--algo", "sb3-dqn", "--set", "sb3.no_such_option=1"],
            "sb3.no_such_option is not an option of DQN",
        ),
        (["--algo", "sb3-ppo", "--set", "sb3.seed=1"], "use run.seed"),
        (["--algo", "sb3-dqn", "--set", 'sb3.train_freq="often"'], "DQN rejected"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    code = main(
        [
            "train",
            *argv,
            "--preset",
            "fast-state",
            "--steps",
            "100",
            "--run-dir",
            str(tmp_path / "x"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("module", ["stable_baselines3", "sb3_contrib"])
def test_missing_sb3_is_a_clear_error(tmp_path: Path, module: str) -> None:
    algo = "sb3-qrdqn" if module == "sb3_contrib" else "sb3-ppo"
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from catchrl.cli import main\n"
        f"sys.exit(main(['train', '--algo', {algo!r}, '--steps', '100', "
        f"'--run-dir', {str(tmp_path / 'x')!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("catchrl train:")]
    assert len(lines) == 1, proc.stderr
    assert module.replace("_", "-") in lines[0] and "pip install" in lines[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("algo", ["sb3-a2c", "sb3-qrdqn"])
def test_other_algorithms_train_and_reload(
    tmp_path: Path, algo: str, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("sb3_contrib")
    run_dir = tmp_path / algo
    assert _train(run_dir, algo, 1_056, "--set", "run.eval_games=50") == 0
    # config.toml stays valid TOML even though SB3 adds classes to policy_kwargs in place
    from catchrl.config import load_config

    assert load_config(path=run_dir / "config.toml").algo == algo
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--sb3", "--games", "50", "--json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["wins"]
        == json.loads((run_dir / "eval.json").read_text())["wins"]
    )
