"""catchrl sweep without Ray: the plan (grid x samples x seeds), the [sweep] table, bad input,
the summary's figures, and that `import catchrl` / `catchrl train` never load Ray."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from catchrl import sweep
from catchrl.cli import main
from catchrl.config import ConfigError, load_config

QUICK = ["--preset", "fast-state", "--set", "run.total_steps=2000"]


def _plan(capsys, *args: str) -> list[str]:
    assert main(["sweep", *QUICK, *args, "--print-plan"]) == 0
    return capsys.readouterr().out.splitlines()


def test_grid_times_seeds(capsys):
    lines = _plan(
        capsys, "--grid", "agent.lr=1e-3,3e-4", "--grid", "agent.batch_size=32,64", "--seeds", "2"
    )
    assert lines[-1] == "4 settings x 2 seeds = 8 trials"
    assert lines[0] == "s000-seed0\tagent.lr=0.001 agent.batch_size=32 run.seed=0"
    assert lines[1] == "s000-seed1\tagent.lr=0.001 agent.batch_size=32 run.seed=1"
    assert lines[3] == "s001-seed1\tagent.lr=0.001 agent.batch_size=64 run.seed=1"
    assert lines[7] == "s003-seed1\tagent.lr=0.0003 agent.batch_size=64 run.seed=1"


def test_seeds_start_at_the_base_seed(capsys):
    lines = _plan(capsys, "--set", "run.seed=10", "--seeds", "3")
    assert [line.split("\t")[0] for line in lines[:3]] == [
        "s000-seed10",
        "s000-seed11",
        "s000-seed12",
    ]


def test_random_draws_are_seeded_and_in_range():
    base = load_config("fast-state")
    space = sweep.space_from_args(
        ["agent.lr=1e-3,3e-4"],
        [
            "agent.batch_size=32,64,128",
            "agent.gamma=uniform:0.9:0.99",
            "agent.tau=loguniform:1e-3:1e-1",
            "agent.n_step=randint:1:4",
        ],
        samples=5,
    )
    a = sweep.plan_study(base, space, seeds=1, search_seed=7)
    b = sweep.plan_study(base, space, seeds=1, search_seed=7)
    c = sweep.plan_study(base, space, seeds=1, search_seed=8)
    assert [s.values for s in a.settings] == [s.values for s in b.settings]
    assert [s.values for s in a.settings] != [s.values for s in c.settings]
    assert len(a.settings) == 10  # 5 draws x 2 grid points
    for s in a.settings:
        v = s.values
        assert v["agent.batch_size"] in (32, 64, 128)
        assert 0.9 <= v["agent.gamma"] <= 0.99
        assert 1e-3 <= v["agent.tau"] <= 1e-1
        assert v["agent.n_step"] in (1, 2, 3, 4)
    # each draw is shared by both grid points, and the first draw is the generator's first
    assert a.settings[0].values["agent.gamma"] == a.settings[1].values["agent.gamma"]
    rng = np.random.default_rng(7)
    assert a.settings[0].values["agent.batch_size"] == (32, 64, 128)[int(rng.integers(3))]
    assert a.settings[0].values["agent.gamma"] == float(rng.uniform(0.9, 0.99))


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
            grid = { "agent.lr" = [1e-3, 5e-4] }
            random = { "agent.hidden" = [64], "agent.gamma" = { uniform = [0.95, 0.95] } }
            """
        )
    )
    assert main(["sweep", "--config", str(path), "--print-plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "2 settings x 2 seeds = 4 trials"
    assert lines[0] == "s000-seed0\tagent.lr=0.001 agent.hidden=64 agent.gamma=0.95 run.seed=0"
    # the command line adds to the file's space and overrides its counts
    assert (
        main(
            [
                "sweep",
                "--config",
                str(path),
                "--seeds",
                "1",
                "--grid",
                "env.num_envs=8,16",
                "--print-plan",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == "4 settings x 1 seeds = 4 trials"


def test_created_study_holds_the_plan_and_the_base(tmp_path):
    base = load_config("fast-state", overrides=["run.total_steps=1234"])
    space = sweep.space_from_args(["agent.lr=1e-3,3e-4"], [], None)
    plan = sweep.plan_study(base, space, seeds=2)
    study = sweep.create_study(tmp_path / "st", base, plan, sweep.RayOptions(cpus_per_trial=0.5))
    doc = sweep.load_study(study)
    assert [t.name for t in doc["trials"]] == [
        "s000-seed0",
        "s000-seed1",
        "s001-seed0",
        "s001-seed1",
    ]
    assert doc["ray"]["cpus_per_trial"] == 0.5
    cfg = sweep.trial_config(study, doc["trials"][3])
    assert (cfg.agent.lr, cfg.run.seed, cfg.run.total_steps) == (3e-4, 1, 1234)
    with pytest.raises(sweep.StudyError, match="already holds a study"):
        sweep.create_study(study, base, plan, sweep.RayOptions())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "agent.nope=1,2"], "unknown key agent.nope"),
        (["--grid", "agent.lr=1e-3,-1"], "agent.lr: must be in (0, 1]"),
        (["--grid", "agent.lr"], "expected table.key=VALUES"),
        (["--grid", "run.seed=1,2"], "run.seed is set by --seeds"),
        (["--grid", "agent.lr=1e-3", "--grid", "agent.lr=3e-4"], "agent.lr is swept twice"),
        (["--samples", "3"], "give --random parameters"),
        (["--random", "agent.lr=loguniform:0:1"], "loguniform needs LOW > 0"),
        (["--random", "agent.lr=uniform:1e-3"], "uniform needs two numbers"),
        (["--random", "agent.n_step=randint:1:2.5"], "randint needs integers"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--cpus-per-trial", "-1"], "--cpus-per-trial must be >= 0"),
        (["--address", " "], "--address is empty"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    study = tmp_path / "study"
    assert main(["sweep", *QUICK, *args, "--study-dir", str(study)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("catchrl sweep: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not study.exists()


def test_bad_sweep_tables(tmp_path, capsys):
    cases = {
        "[sweep]\nseed = 3\n": "unknown key sweep.seed",
        '[sweep]\ngrid = { "agent.lr" = 0.1 }\n': "sweep.grid.agent.lr must be a list",
        '[sweep]\nrandom = { "agent.lr" = { normal = [0, 1] } }\n': "unknown distribution",
        "[sweep]\nseeds = 1.5\n": "sweep.seeds must be an integer",
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


def test_resume_needs_a_study(tmp_path, capsys):
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    assert "is not a catchrl study (no study.json)" in capsys.readouterr().err
    assert main(["sweep", "--resume", str(tmp_path), "--grid", "agent.lr=1e-3"]) == 2
    assert "--resume continues the study as planned" in capsys.readouterr().err


def _result(name, setting, seed, steps, seconds, test, reached):
    return {
        "name": name,
        "setting": setting,
        "seed": seed,
        "steps": steps,
        "games": steps // 33,
        "seconds": seconds,
        "cpu_seconds": seconds / 2,
        "reached_target": reached,
        "test": {"win_rate": test, "games": 100},
        "evaluations": [{"steps": steps, "win_rate": test}],
    }


def test_summary_medians_and_spreads(tmp_path):
    base = load_config("fast-state", overrides=["run.target_win_rate=0.9"])
    plan = sweep.plan_study(base, sweep.space_from_args(["agent.lr=1e-3,3e-4"], [], None), seeds=3)
    study = sweep.create_study(tmp_path / "st", base, plan, sweep.RayOptions())
    figures = [  # setting 0: all three reach the target; setting 1: one does, one unfinished
        _result("s000-seed0", 0, 0, 3000, 10.0, 0.95, True),
        _result("s000-seed1", 0, 1, 5000, 30.0, 0.92, True),
        _result("s000-seed2", 0, 2, 4000, 12.0, 0.99, True),
        _result("s001-seed0", 1, 0, 9000, 50.0, 0.91, True),
        _result("s001-seed1", 1, 1, 9900, 60.0, 0.40, False),
    ]
    for f in figures:
        (study / "results" / f"{f['name']}.json").write_text(json.dumps(f))
    summary = sweep.summarize(study)
    r0, r1 = summary["rows"]
    assert (r0["reached"], r0["finished"], r0["seeds"]) == (3, 3, 3)
    assert r0["steps_to_target"] == {"median": 4000, "min": 3000, "max": 5000}
    assert r0["seconds_to_target"] == {"median": 12.0, "min": 10.0, "max": 30.0}
    assert r0["test_win_rate"] == {"median": 0.95, "min": 0.92, "max": 0.99}
    assert (r1["reached"], r1["finished"]) == (1, 2)
    assert r1["steps_to_target"] == {"median": 9000, "min": 9000, "max": 9000}
    assert r1["test_win_rate"]["median"] == pytest.approx(0.655)
    table = (study / "summary.md").read_text()
    assert (
        "| agent.lr=0.001 | 3/3 | 4000 [3000–5000] | 12.0 [10.0–30.0] | 6.0 [5.0–15.0] "
        "| 95.0 [92.0–99.0] |" in table
    )
    assert "| agent.lr=0.0003 | 1/3 | 9000 [9000–9000]" in table
    png = (study / "summary.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_toml_value_round_trips():
    import tomllib

    data = {
        "a": 1,
        "b": 2.5e-7,
        "c": 'x "q" \\ y',
        "d": [1, 2],
        "e": {"net_arch": [64, 64]},
        "f": True,
    }
    text = "\n".join(f"{k} = {sweep.toml_value(v)}" for k, v in data.items())
    assert tomllib.loads(text) == data


def test_sweep_of_a_sb3_setting_is_checked(capsys):
    assert (
        main(["sweep", *QUICK, "--algo", "sb3-ppo", "--grid", "sb3.n_steps=64,128", "--print-plan"])
        == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == "2 settings x 1 seeds = 2 trials"
    assert (
        main(["sweep", *QUICK, "--algo", "sb3-ppo", "--grid", "sb3.not_an_arg=1", "--print-plan"])
        == 2
    )
    assert "not_an_arg" in capsys.readouterr().err


NO_RAY = """
import sys
import catchrl, catchrl.cli, catchrl.sweep, catchrl.commands.sweep
catchrl.cli.build_parser()
assert catchrl.cli.main(sys.argv[1:]) == 0
leaked = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
assert not leaked, leaked[:5]
print("no ray")
"""


def test_import_and_train_never_import_ray(tmp_path):
    args = [
        "train",
        "--preset",
        "fast-state",
        "--no-progress",
        "--run-dir",
        str(tmp_path / "r"),
        "--set",
        "run.total_steps=300",
        "--set",
        "agent.observe=100",
        "--set",
        "run.eval_games=10",
        "--set",
        "run.eval_every=8",
    ]
    out = subprocess.run(
        [sys.executable, "-c", NO_RAY, *args], capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("no ray")
    assert (tmp_path / "r" / "model.keras").is_file()


def test_config_errors_name_the_base_config():
    with pytest.raises(ConfigError, match="agent.lr"):
        sweep.plan_study(
            load_config("fast-state"), sweep.space_from_args(["agent.lr=5"], [], None), 1
        )


def test_no_study_without_a_folder_name(tmp_path, capsys):
    assert main(["sweep", *QUICK, "--study-dir", ""]) == 2
    assert "--study-dir is empty" in capsys.readouterr().err
    assert not any(Path(tmp_path).iterdir())


def test_without_ray_nothing_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    study = tmp_path / "study"
    assert main(["sweep", *QUICK, "--grid", "agent.lr=1e-3", "--study-dir", str(study)]) == 2
    err = capsys.readouterr().err
    assert "needs Ray Tune" in err and "pip install 'catchrl[ray]'" in err, err
    assert not study.exists()
