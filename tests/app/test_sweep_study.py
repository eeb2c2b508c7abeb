"""The 12-trial study on an embedded local Ray (4 settings x 3 seeds of fast-state).

Run once undisturbed and once stopped with Ctrl-C (SIGINT) after a few trials
have finished and resumed with ``catchrl sweep --resume``: both print the table
and write the plot, the resumed study does not rerun a finished trial, and every
trial's results equal the undisturbed study's. About 10 minutes on 2 shared
cores: slow (the multi-node fault test in test_sweep_faults.py runs in CI).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")

from catchrl import sweep
from tests.app.test_sweep_faults import ENV, _figures

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

STUDY = [
    "--preset", "fast-state",
    "--set", "run.total_steps=3168",  # 6 x 16 games of 33 steps
    "--set", "agent.observe=500",
    "--set", "run.eval_every=32",
    "--set", "run.checkpoint_every=16",
    "--set", "run.eval_games=200",
    "--grid", "agent.lr=1e-3,3e-4",
    "--grid", "agent.batch_size=64,128",
    "--seeds", "3",
    "--num-cpus", "2",
]  # fmt: skip


def _sweep(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "catchrl", "sweep", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
    )  # fmt: skip


def test_twelve_trials_stopped_and_resumed(tmp_path):
    calm, hurt = tmp_path / "calm", tmp_path / "hurt"
    out, _ = (p := _sweep(*STUDY, "--study-dir", str(calm))).communicate(timeout=3000)
    assert p.returncode == 0, out[-3000:]
    assert "12/12 trials finished" in out
    assert out.count("| agent.lr=") == 4
    assert (calm / "summary.png").stat().st_size > 10_000

    p = _sweep(*STUDY, "--study-dir", str(hurt))
    while len(sweep.read_results(hurt)) < 5:
        assert p.poll() is None, p.stdout.read()[-3000:]
        time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 128 + signal.SIGINT, out[-3000:]
    done_before = set(sweep.read_results(hurt))
    assert 5 <= len(done_before) < 12

    out, _ = (p := _sweep("--resume", str(hurt))).communicate(timeout=3000)
    assert p.returncode == 0, out[-3000:]
    assert "12/12 trials finished" in out
    assert _figures(hurt) == _figures(calm)
    for name in done_before:
        assert len(sweep.attempts(hurt, name)) == 1
