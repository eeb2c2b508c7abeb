"""The seed statistics (catchrl.stats) and ``catchrl bench agents`` end to end on a tiny budget."""

from __future__ import annotations

import csv
import json
import math

import pytest

from catchrl.api import make_config
from catchrl.benchmarks.agents import PRESET, like_for_like, race_settings
from catchrl.cli import main
from catchrl.config import load_config
from catchrl.evaluation import TEST_SEED
from catchrl.stats import summarize, write_summary
from catchrl.training import MLP_UNITS


def _run(seed: int, curve: list[tuple[int, float]], test: float) -> dict:
    """A run with evaluations at ``curve``'s (steps, win rate); 10 s, 5 CPU s per 1k steps."""
    evals = [
        {"steps": s, "wall_time": s / 100, "train_cpu_s": s / 200, "win_rate": w} for s, w in curve
    ]
    return {
        "name": f"r{seed}",
        "seed": seed,
        "evaluations": evals,
        "test_win_rate": test,
        "model": "best.keras",
        "peak_rss_mib": 100.0,
    }


def test_a_seed_that_never_reaches_the_target_counts_as_infinite(tmp_path):
    runs = [
        _run(0, [(1000, 0.5), (3000, 0.995)], 0.99),
        _run(1, [(1000, 0.2), (5000, 0.99)], 0.98),
        _run(2, [(2000, 0.97), (9000, 0.98)], 0.90),  # never at 99 %
    ]
    [row] = summarize({"dqn": runs}, 0.99)
    assert row["seeds"] == 3 and row["reached"] == 2
    # Steps to 99 % are 3000, 5000 and never: the median is 5000, not 4000 (the two that
    # got there), the upper quartile and the worst seed are "never".
    assert row["steps"] == {"q25": 4000.0, "median": 5000.0, "q75": math.inf, "worst": math.inf}
    assert row["wall_time"]["median"] == 50.0 and row["train_cpu_s"]["q25"] == 20.0
    assert row["low"] <= row["iqm"] <= row["high"] and row["cpu_per_1k"] == 5.0
    assert summarize({"dqn": runs[:2]}, 0.99)[0]["steps"]["median"] == 4000.0
    table = write_summary(tmp_path / "seeds", [row], 0.99, "contender", extra=["peak_rss_mib"])
    assert "| dqn | 2/3 | 5,000 [4,000, never], never | 50.0 [40.0, never], never |" in table
    assert table.endswith(" | 5.00 |") and (tmp_path / "seeds.md").read_text() == table + "\n"
    with (tmp_path / "seeds.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert [line["steps"] for line in lines] == ["3000.0", "5000.0", ""]
    assert lines[2]["test_win_rate"] == "0.9" and lines[2]["peak_rss_mib"] == "100.0"


def test_race_on_a_tiny_budget_writes_the_table_the_seeds_and_the_plot(
    tmp_path, capsys, monkeypatch
):
    pytest.importorskip("stable_baselines3")
    monkeypatch.chdir(tmp_path)  # the runs start here, beside a folder named like the package
    out = tmp_path / "catchrl"
    argv = ["bench", "agents", "--agents", "sb3-dqn-like", "--obs", "state", "--seeds", "0"]
    argv += ["--state-steps", "1100", "--eval-every", "8", "--eval-games", "20", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("| contender | seeds at 99 % |")
    assert "| sb3-dqn-like (state) |" in printed.out
    with (out / "race.csv").open() as f:
        [seed] = list(csv.DictReader(f))
    assert (seed["group"], seed["seed"]) == ("sb3-dqn-like (state)", "0")
    # the kept model, picked on two validation evaluations, on the test games
    tested = json.loads((out / "sb3-dqn-like-state-s0" / "eval.json").read_text())
    assert float(seed["test_win_rate"]) == tested["win_rate"] and tested["seed"] == TEST_SEED
    assert seed["model"].startswith("best.") and 50 < float(seed["peak_rss_mib"]) < 4000
    table = printed.out.split("\n\n")[0]  # the printed table is the one race.md holds
    assert table in (out / "race.md").read_text()
    assert (out / "race.png").read_bytes()[:4] == b"\x89PNG"
    # Like for like: SB3's DQN with fast-state's game, n-step returns and replay ratio.
    like = load_config(path=out / "sb3-dqn-like-state-s0" / "config.toml")
    ours = make_config(PRESET["state"])
    assert like.algo == "sb3-dqn" and like.env == ours.env
    assert like.sb3["n_steps"] == ours.agent.n_step and like.sb3["train_freq"] == 1
    assert like.sb3["policy_kwargs"] == {"net_arch": list(MLP_UNITS)}  # catchrl's MLP
    assert like.sb3["gradient_steps"] == ours.agent.gradient_steps
    assert like.sb3["batch_size"] == ours.agent.batch_size


def test_like_for_like_on_pixels_is_sb3_dqn_with_catchrls_tiny_network():
    pytest.importorskip("stable_baselines3")
    cfg = make_config(PRESET["pixels"], None, like_for_like("pixels"), "sb3-dqn")
    assert cfg.sb3["policy_kwargs"] == {"features_extractor_class": "tiny", "net_arch": []}
    assert cfg.sb3["n_steps"] == cfg.agent.n_step
    assert cfg.sb3["gradient_steps"] == cfg.agent.gradient_steps


def test_each_contender_trains_with_its_algorithm_and_module():
    from catchrl.benchmarks.agents import MODULE_CONTENDERS, module_overrides
    from catchrl.config import load_config

    algos = {name: race_settings(name, "pixels")[0] for name in ("sb3-dqn-like", "sb3-ppo")}
    assert algos == {"sb3-dqn-like": "sb3-dqn", "sb3-ppo": "sb3-ppo"}
    modules = {}
    for contender in MODULE_CONTENDERS:
        algo, sets = race_settings(contender, "pixels", overrides=module_overrides(contender, "p"))
        modules[contender] = (algo, load_config(PRESET["pixels"], None, sets).agent.module)
    assert modules == {
        "catchrl-dqn": ("dqn", ""),
        "dqn-perceived": ("dqn", "perception:p"),
        "dqn-encoder-frozen": ("dqn", "encoder:p"),
        "dqn-encoder": ("dqn", "tuned-encoder:p"),
        "dqn-aux": ("dqn", "landing-head"),
    }
