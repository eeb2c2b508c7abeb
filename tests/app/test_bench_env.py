"""``catchrl bench env``: the grid rows, and gymnax's rows where gymnax is installed."""

from __future__ import annotations

import pytest

from catchrl.benchmarks.env import gymnax_missing, run_env_benchmark, run_gymnax_benchmark
from catchrl.cli import main


def test_bench_env_times_the_grid_vector_env_both_ways_and_gymnax_where_installed(capsys):
    assert main(["bench", "env", "--seconds", "0.01", "--batch-sizes", "3", "--json"]) == 0
    out, err = capsys.readouterr()
    grid = [line for line in out.splitlines() if '"case": "CatchVectorEnv grid' in line]
    assert len(grid) == 2  # copy=True and copy=False
    gymnax_rows = [line for line in out.splitlines() if '"case": "gymnax' in line]
    if gymnax_missing() is None:
        assert len(gymnax_rows) == 2 and "gymnax" not in err
    else:  # skipped, and said so (on stderr: the JSON stays parseable)
        assert not gymnax_rows
        assert "gymnax rows skipped" in err and "pip install gymnax" in err


def test_gymnax_rows_refuse_clearly_without_gymnax():
    if gymnax_missing() is None:
        rows = run_gymnax_benchmark(0.01, (2,))
        assert [r["envs"] for r in rows] == [2, 2] and all(r["steps"] > 0 for r in rows)
    else:
        with pytest.raises(ImportError, match="pip install gymnax"):
            run_gymnax_benchmark(0.01, (2,))
    rows = run_env_benchmark(0.01, (2,), gymnax=False)
    assert not [r for r in rows if r["api"] == "gymnax"]
