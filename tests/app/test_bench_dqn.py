"""``catchrl bench dqn --part backends``: each backend in its own process, real runs."""

import pytest

from catchrl.benchmarks import dqn


def test_backend_worker_reports_a_real_run(capsys):
    assert dqn.main(["--backend-worker", "tensorflow", "--preset", "fast-state",
                     "--seeds", "0", "--max-steps", "1200"]) == 0  # fmt: skip
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("RESULT "))
    result = dqn.json.loads(line[len("RESULT ") :])
    assert result["steps"] >= 1200 and result["train_s"] > 0 and result["cpu_s"] > 0


@pytest.mark.slow
def test_backends_table_times_each_installed_backend_and_names_a_missing_one():
    rows = dqn.bench_backends("fast-state", seeds=(0,), steps=200, backends=("tensorflow", "nope"))
    tf, nope = rows
    assert tf["backend"] == "tensorflow" and float(tf["ms/step"]) > 0
    assert tf["vs tensorflow (wall / CPU)"] == "1.00x / 1.00x"
    assert nope["ms/step"] == "not installed (pip install nope)" and nope.keys() == tf.keys()
