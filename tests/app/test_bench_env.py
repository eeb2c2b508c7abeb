"""``catchrl bench env``: a row per case, gymnax's where it is installed, CPU time beside wall."""

from __future__ import annotations

import json

from catchrl.benchmarks.env import format_table, gymnax_missing, run_env_benchmark
from catchrl.cli import main


def test_bench_env_times_every_case_and_says_why_gymnax_is_missing(capsys):
    assert main(["bench", "env", "--seconds", "0.01", "--batch-sizes", "3", "--json"]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    cases = [(r["case"], r["envs"]) for r in rows]
    assert {("CatchEnv pixels", 1), ("CatchEnv grid", 1), ("CatchVectorEnv grid", 3)} <= set(cases)
    assert {("CatchVectorEnv pixels", 3), ("CatchVectorEnv pixels, copy=True", 3)} <= set(cases)
    assert all(r["steps"] > 0 and r["cpu_seconds"] > 0 for r in rows)
    gymnax_rows = [r["envs"] for r in rows if r["case"].startswith("gymnax")]
    if gymnax_missing() is None:  # the ratio is against gymnax at the same number of games
        assert gymnax_rows == [3] and "gymnax" not in err
        assert [r["x_gymnax"] is None for r in rows] == [r["envs"] != 3 for r in rows]
    else:  # skipped, and said so on stderr: the JSON stays parseable
        assert not gymnax_rows and "gymnax rows skipped" in err and "pip install gymnax" in err
        assert all(r["x_gymnax"] is None for r in rows)


def test_the_table_has_a_line_per_case_with_cpu_and_wall_seconds():
    rows = run_env_benchmark(0.01, (2,), gymnax=False)
    assert not [r for r in rows if r["case"].startswith("gymnax")]
    lines = format_table(rows).splitlines()
    assert len(lines) == 4 + len(rows) and "| CPU s | wall s |" in lines[2]
    assert lines[4].startswith("| CatchEnv pixels | 1 |") and " | – | " in lines[4]
