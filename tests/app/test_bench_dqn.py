"""``catchrl bench dqn --part backends``: each backend in its own process, real runs."""

import pytest

from catchrl.benchmarks import dqn


def test_backend_worker_reports_a_real_run_of_the_asked_budget(capsys):
    assert dqn.main(["--backend-worker", "tensorflow", "--preset", "fast-state",
                     "--seeds", "0", "--max-steps", "1200"]) == 0  # fmt: skip
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("RESULT "))
    result = dqn.json.loads(line[len("RESULT ") :])
    assert result["steps"] == 1200  # 75 rounds of 16 games: the budget, no evaluation games
    assert 0 < result["train_s"] and 0 < result["cpu_s"]


def test_backends_table_is_the_median_per_step_difference_of_two_runs(monkeypatch):
    # start-up (5 s wall, 9 s CPU) is in both runs of a seed and must cancel
    per_step = {"tensorflow": ([1.0, 1.2, 5.0], 2.0), "torch": ([3.6, 3.6, 3.6], 5.0)}

    def run(backend, preset, seed, steps):
        wall, cpu = per_step[backend]
        return {
            "steps": steps,
            "train_s": 5 + wall[seed] * steps / 1e3,
            "cpu_s": 9 + cpu * steps / 1e3,
        }

    monkeypatch.setattr(dqn, "_backend_run", run)
    rows = dqn.bench_backends("fast", (0, 1, 2), 6_000, backends=("tensorflow", "nope", "torch"))
    tf, nope, torch = rows
    assert (tf["ms/step"], tf["CPU ms/step"], tf["steps/s"]) == ("1.20", "2.00", "833")
    assert tf["spread (ms/step)"] == "1.00-5.00"  # the median, not the mean (2.40)
    assert torch["vs tensorflow (wall / CPU)"] == "3.00x / 2.50x"
    assert nope["ms/step"] == "not installed (pip install nope)" and nope.keys() == tf.keys()


@pytest.mark.slow
def test_backends_table_times_a_real_backend():
    (tf,) = dqn.bench_backends("fast-state", seeds=(0,), steps=200, backends=("tensorflow",))
    assert float(tf["ms/step"]) > 0 and tf["vs tensorflow (wall / CPU)"] == "1.00x / 1.00x"


def test_target_set_overrides_come_after_the_benchmark_settings(monkeypatch, capsys):
    seen: list[tuple[int, list[str]]] = []

    def reach_and_hold(preset, seed, overrides, run_dir, target, test_games, hold):
        seen.append((seed, overrides))
        reach = {"steps": 1000 * (seed + 1), "wall_time": 2.0, "train_cpu_s": 3.0,
                 "test_win_rate": 0.995}  # fmt: skip
        return {"reach": reach, "min_validation_after": 0.98, "steps": 5000 * (seed + 1),
                "kept_test_win_rate": 1.0}  # fmt: skip

    monkeypatch.setattr(dqn, "_reach_and_hold", reach_and_hold)
    sets = ["--set", "agent.settle_lr=3e-5", "--set", "run.eval_games=50"]
    assert dqn.main(["--part", "target", "--seeds", "0", "1", "--max-steps", "9000", *sets]) == 0
    assert [s for s, _ in seen] == [0, 1]
    for _, overrides in seen:  # the benchmark's settings first, the user's last (they win)
        assert overrides[0] == "run.total_steps=9000"
        assert overrides[-2:] == ["agent.settle_lr=3e-5", "run.eval_games=50"]
    out = capsys.readouterr().out
    median = out.splitlines()[-1].split("|")
    assert [c.strip() for c in median[:3]] == ["fast", "median", "1500"]
    assert "--set agent.settle_lr=3e-5 --set run.eval_games=50" in out  # said above the table
    # checked as the runs use them: the benchmark's own run.total_steps makes this valid
    assert dqn.main(["--part", "target", "--preset", "book", "--set", "run.total_games=0"]) == 0


@pytest.mark.parametrize(
    ("item", "says"),
    [("agent.settle_lr=-1", "agent.settle_lr: must be >= 0"), ("settle_lr", "expected table.key")],
)
def test_target_bad_set_is_one_line_and_runs_nothing(monkeypatch, capsys, item, says):
    monkeypatch.setattr(dqn, "_reach_and_hold", lambda *a: pytest.fail("a run started"))
    with pytest.raises(SystemExit) as stop:
        dqn.main(["--part", "target", "--set", item])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("catchrl bench dqn: error: ") and says in err[0]


def test_set_without_the_target_part_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        dqn.main(["--part", "latency", "--set", "agent.lr=1e-4"])
    assert stop.value.code == 2 and "--part target only" in capsys.readouterr().err
