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
