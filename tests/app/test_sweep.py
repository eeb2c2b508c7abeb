"""catchrl sweep without running a study: the space in Tune's terms, the [sweep] table, bad
input, the study lock, the summary's IQM and bootstrap CI, and Ray loaded only to run one."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from catchrl import sweep
from catchrl.cli import main
from catchrl.config import load_config, to_toml
from catchrl.errors import CatchrlError
from catchrl.rundir import METRIC_COLUMNS
from catchrl.stats import iqm_ci, summarize_study
from tests.app.test_api import _planted_sb3_zip

QUICK = ["--preset", "fast-state", "--set", "run.total_steps=2000"]


def _space(capsys, *args: str) -> list[str]:
    assert main(["sweep", *QUICK, *args, "--print-space"]) == 0
    return capsys.readouterr().out.splitlines()


def test_grid_random_and_tpe_spaces(capsys):
    grid = ["--grid", "agent.lr=1e-3,3e-4", "--grid", "agent.batch_size=32,64", "--seeds", "3"]
    assert _space(capsys, *grid) == [
        "agent.lr: tune.grid_search([0.001, 0.0003])",
        "agent.batch_size: tune.grid_search([32, 64])",
        "search random: 12 trials (3 seeds per setting)",
    ]
    # TPE has no grid: the values become choices; it proposes as many settings as the grid has
    assert _space(capsys, *grid, "--search", "tpe")[1:] == [
        "agent.batch_size: tune.choice([32, 64])",
        "search tpe: 12 trials (3 seeds per setting)",
    ]
    drawn = ["--random", "agent.lr=loguniform:1e-4:1e-2", "--random", "agent.n_step=randint:1:4"]
    assert _space(capsys, *drawn, "--samples", "5", "--grid", "agent.batch_size=32,64") == [
        "agent.batch_size: tune.grid_search([32, 64])",
        "agent.lr: tune.loguniform(0.0001, 0.01)",
        "agent.n_step: tune.randint(1, 4)",
        "search random: 10 trials (1 seeds per setting)",
    ]


def test_tune_space_is_tunes_own():
    pytest.importorskip("ray")
    from ray.tune.search.sample import Categorical, Float, Integer

    space = {"agent.lr": ("loguniform", [1e-4, 1e-2]), "agent.n_step": ("randint", [1, 4]),
             "agent.batch_size": ("grid_search", [32, 64])}  # fmt: skip
    tuned = sweep.tune_space(space)
    assert isinstance(tuned["agent.lr"], Float) and tuned["agent.lr"].lower == 1e-4
    assert isinstance(tuned["agent.n_step"], Integer) and tuned["agent.n_step"].upper == 4
    assert tuned["agent.batch_size"] == {"grid_search": [32, 64]}
    tpe = sweep.read_sweep({"search": "tpe", "grid": {"agent.batch_size": [32, 64]}}, "")["space"]
    assert isinstance(sweep.tune_space(tpe)["agent.batch_size"], Categorical)


def test_sweep_table_in_the_config_file(tmp_path, capsys):
    path = tmp_path / "study.toml"
    path.write_text(
        textwrap.dedent(
            """
            preset = "fast-state"
            [run]
            total_steps = 3000
            [sweep]
            seeds = 2
            search = "tpe"
            grid = { "agent.lr" = [1e-3, 5e-4] }
            [sweep.random]
            "agent.n_step" = { randint = [1, 4] }
            [agent]
            batch_size = 64
            """
        )
    )
    assert main(["sweep", "--config", str(path), "--samples", "3", "--print-space"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "agent.lr: tune.choice([0.001, 0.0005])",
        "agent.n_step: tune.randint(1, 4)",
        "search tpe: 6 trials (2 seeds per setting)",
    ]
    # the command line adds to the file's space and overrides its counts
    args = ["--config", str(path), "--seeds", "1", "--search", "random", "--print-space"]
    assert main(["sweep", *args, "--grid", "env.num_envs=8,16"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1] == "search random: 4 trials (1 seeds per setting)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "agent.nope=1,2"], "unknown key agent.nope"),
        (["--grid", "agent.lrr=1e-3"], "swept agent.lrr=0.001: unknown key agent.lrr"),
        (["--grid", "agent.lr=1e-3,-1"], "agent.lr: must be in (0, 1]"),
        (["--grid", "agent.lr"], "'agent.lr': expected table.key=VALUES"),
        (["--grid", "agent.lr=1e-3,"], "'agent.lr=1e-3,': expected table.key=VALUES"),
        (["--grid", "run.seed=1,2"], "run.seed is set by --seeds"),
        (["--grid", "agent.lr=1e-3", "--grid", "agent.lr=3e-4"], "agent.lr is swept twice"),
        (["--samples", "3"], "give --random parameters"),
        (["--random", "agent.lr=loguniform:0:1"], "loguniform needs two numbers 0 < LOW < HIGH"),
        (["--random", "agent.lr=uniform:1e-3"], "uniform needs two numbers LOW < HIGH"),
        (["--random", "agent.n_step=randint:1:2.5"], "randint needs two integers LOW < HIGH"),
        (["--random", "agent.batch_size=uniform:64:128"], "expected int, got float 64.0"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--cpus-per-trial", "-1"], "--cpus-per-trial must be >= 0"),
        (["--address", " "], "--address must not be empty"),
        (["--study-dir", ""], "--study-dir must not be empty"),
        (["--search", "tpe", "--asha"], "--asha goes with --search random"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    study = tmp_path / "study"
    assert main(["sweep", *QUICK, "--study-dir", str(study), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("catchrl sweep: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not study.exists()


def test_bad_sweep_tables(tmp_path, capsys):
    cases = {
        "[sweep]\nseed = 3\n": "unknown key sweep.seed",
        '[sweep]\ngrid = { "agent.lr" = 0.1 }\n': "sweep.grid.agent.lr must be a list",
        '[sweep]\nrandom = { "agent.lr" = { normal = [0, 1] } }\n': "unknown distribution",
        "[sweep]\nseeds = 1.5\n": "bad.toml: sweep.seeds: expected int, got float 1.5",
        "[sweep]\ncpus_per_trial = -1\n": "sweep.cpus_per_trial: must be >= 0",
        '[sweep]\nsearch = "bohb"\n': "sweep.search: must be one of ('random', 'tpe')",
        "sweep = 3\n": "[sweep] must be a table",
        "[agent]\nlr = 2.0\n[sweep]\nseeds = 2\n": "agent.lr: must be in (0, 1]",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        assert main(["sweep", "--config", str(path), "--study-dir", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err
        assert message in err, (text, err)
        assert not (tmp_path / "s").exists()


def test_sb3_settings_are_checked(capsys):
    assert _space(capsys, "--algo", "sb3-ppo", "--grid", "sb3.n_steps=64,128")[-1] == (
        "search random: 2 trials (1 seeds per setting)"
    )
    assert main(["sweep", *QUICK, "--algo", "sb3-ppo", "--grid", "sb3.nope=1", "--print-space"])
    assert "nope" in capsys.readouterr().err


def test_an_sb3_study_needs_the_trust_flag_and_resume_refuses_before_loading(tmp_path, capsys):
    study = tmp_path / "s"
    args = ["sweep", *QUICK, "--algo", "sb3-ppo", "--study-dir", str(study)]
    assert main(args) == 2
    assert "pass --sb3" in capsys.readouterr().err and not study.exists()
    assert main([*args, "--print-space"]) == 0  # nothing runs: no trust needed
    from catchrl.api import make_config
    from catchrl.sweep import StudyError, run_study

    # a study folder as `catchrl sweep --algo sb3-ppo --sb3` leaves it
    sweep.create_study(study, make_config("fast-state", algo="sb3-ppo"), sweep.read_sweep({}, ""))
    trial = study / "trials" / "t000-seed0"  # a trial's SB3 model with a planted payload
    trial.mkdir(parents=True)
    marker = tmp_path / "ran"
    _planted_sb3_zip(trial / "model.zip", marker)
    before = sorted(str(p.relative_to(study)) for p in study.rglob("*"))
    with pytest.raises(StudyError, match="pass --sb3"):
        run_study(study, resume=True)
    assert sorted(str(p.relative_to(study)) for p in study.rglob("*")) == before  # before Ray
    assert not marker.exists()


def test_resume_needs_a_study(tmp_path, capsys):
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    assert "is not a catchrl study (no study.toml)" in capsys.readouterr().err
    assert main(["sweep", "--resume", str(tmp_path), "--grid", "agent.lr=1e-3"]) == 2
    assert "--resume continues the study as it was made" in capsys.readouterr().err
    for option in (["--seeds", "2"], ["--print-space"], ["--search-seed", "0"]):
        assert main(["sweep", "--resume", str(tmp_path), *option]) == 2
        assert f"as it was made: drop {option[0]}" in capsys.readouterr().err


def test_a_new_study_refuses_a_used_folder_and_one_driver_holds_it(tmp_path):
    pytest.importorskip("ray")
    from catchrl.rundir import RunDir

    base = load_config("fast-state")
    plan = sweep.read_sweep({}, "")
    study = sweep.create_study(tmp_path / "st", base, plan)
    with pytest.raises(sweep.StudyError, match="already holds a study"):
        sweep.create_study(study, base, plan)
    with RunDir(study).lock():  # a driver runs it: a second one stops before Ray starts
        with pytest.raises(CatchrlError, match=rf"is in use by pid {os.getpid()} on host "):
            sweep.run_study(study)


def test_iqm_and_its_bootstrap_interval():
    iqm, low, high = iqm_ci([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    assert iqm == 3.5  # the middle half: 2, 3, 4, 5 (the outlier is cut)
    assert 1.0 < low < 3.5 < high < 100.0  # resamples may repeat the outlier
    assert iqm_ci([0.9, 0.9, 0.9]) == (pytest.approx(0.9), pytest.approx(0.9), pytest.approx(0.9))
    assert iqm_ci([0.7]) == (0.7, None, None)


def _run(study, name, lr, seed, test, steps, model="best.keras"):
    run = study / "trials" / name
    run.mkdir(parents=True)
    cfg = load_config("fast-state", overrides=[f"agent.lr={lr}", f"run.seed={seed}"])
    (run / "config.toml").write_text(to_toml(cfg))
    row = {c: 0 for c in METRIC_COLUMNS} | {"steps": steps}
    (run / "metrics.tsv").write_text(
        "\t".join(METRIC_COLUMNS) + "\n" + "\t".join(str(row[c]) for c in METRIC_COLUMNS) + "\n"
    )
    evals = [
        {"steps": s, "wall_time": s / 1000, "train_cpu_s": s / 2000, "win_rate": w}
        for s, w in ((steps // 2, 0.5), (steps, test))
    ]
    (run / "evals.json").write_text(json.dumps(evals))
    (run / "eval.json").write_text(json.dumps({"model": model, "win_rate": test, "games": 200}))


def test_summary_aggregates_seeds_per_setting(tmp_path):
    plan = sweep.read_sweep({"seeds": 3, "grid": {"agent.lr": [1e-3, 3e-4]}}, "")
    study = sweep.create_study(tmp_path / "st", load_config("fast-state"), plan)
    for seed, test in enumerate([0.99, 0.97, 0.98]):
        _run(study, f"t00{seed}-seed{seed}", 1e-3, seed, test, 9000 + 1000 * seed)
    for seed, test in enumerate([0.5, 0.9]):  # one seed of this setting did not finish
        _run(study, f"t00{seed + 3}-seed{seed}", 3e-4, seed, test, 20000, "model.keras")
    _run(study, "t005-seed0", 1e-3, 0, 0.99, 9000)  # TPE proposed a setting again: a repeat
    rows = summarize_study(study, *sweep.load_study(study))
    assert [r["label"] for r in rows] == ["agent.lr=0.001", "agent.lr=0.0003"]
    assert rows[0]["iqm"] == pytest.approx(0.98) and rows[0]["reached"] == 1  # 99 %: seed 0
    assert rows[0]["low"] <= 0.98 <= rows[0]["high"]
    table = (study / "summary.md").read_text()
    assert "6/6 trials, search grid," in table and "tensorboard --logdir" in table
    assert "1 trials repeated a setting and seed already run: counted once." in table
    assert "| agent.lr=0.001 | 1/3 | never [never, never], never |" in table
    assert table.rstrip().endswith("| 70.0 [50.0, 90.0] | 0.50 |")  # agent.lr=0.0003, 2 seeds
    assert "kept model (best.keras, model.keras)" in table
    assert (study / "summary.csv").read_text().count("\n") == 1 + 5
    png = (study / "summary.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_without_ray_nothing_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    study = tmp_path / "study"
    assert main(["sweep", *QUICK, "--grid", "agent.lr=1e-3", "--study-dir", str(study)]) == 2
    err = capsys.readouterr().err
    assert "needs ray" in err and "pip install 'catchrl[ray]'" in err, err
    assert not study.exists()


def test_a_study_saves_the_users_own_sb3_settings_so_each_trial_gets_its_obs_types(
    tmp_path, monkeypatch
):
    pytest.importorskip("ray")
    from catchrl.api import make_config

    def made(study, *args):  # the study is written: stop before Ray runs it
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_study", made)
    study = tmp_path / "st"
    grid = ["--grid", "sb3.gamma=0.9,0.99", "--study-dir", str(study), "--sb3"]
    main(["sweep", *QUICK, "--algo", "sb3-dqn", "--set", "sb3.learning_rate=0.001", *grid])
    saved = study / "study.toml"
    assert "MlpPolicy" not in saved.read_text() and "learning_rate = 0.001" in saved.read_text()
    assert "frame_size" not in saved.read_text()  # not the user's: each trial's own default
    state = make_config("fast", saved).sb3
    pixels = make_config("fast", saved, ['env.obs_type="pixels"', 'agent.network="tiny"']).sb3
    assert state["policy"] == "MlpPolicy" and pixels["policy"] == "CnnPolicy"
    assert pixels["learning_rate"] == 0.001 and pixels.get("policy_kwargs") != state.get(
        "policy_kwargs"
    )
