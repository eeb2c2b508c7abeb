"""The 12-trial study on an embedded local Ray (4 settings x 3 seeds of fast-state).

Run once undisturbed and once stopped with Ctrl-C (SIGINT) after a few trials
have finished and resumed with ``catchrl sweep --resume``: both print the table
and write the plot, the resumed study does not rerun a finished trial, and every
trial's results equal the undisturbed study's. 437 CPU s of trials a study:
about 10 minutes for the two on 2 idle cores, an hour on the loaded shared
machine: slow (the multi-node fault test in test_sweep_faults.py runs in CI).
"""

from __future__ import annotations

import signal
import time

import pytest

pytest.importorskip("ray")

from tests.app.test_sweep_faults import _done, _figures, _reports, finish, spawn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(7200)]

STUDY = [
    "--preset", "fast-state",  # 50,000 steps at most, stops at 99 % on its validation games
    "--grid", "agent.lr=1e-3,3e-4",
    "--grid", "agent.batch_size=64,128",
    "--seeds", "3",
    "--num-cpus", "2",
]  # fmt: skip


def test_twelve_trials_stopped_and_resumed(tmp_path):
    calm, hurt = tmp_path / "calm", tmp_path / "hurt"
    t0 = time.perf_counter()
    code, out = finish(spawn(*STUDY, "--study-dir", str(calm), log=tmp_path / "calm.log"), 3000)
    print(f"undisturbed study: {time.perf_counter() - t0:.0f} s")
    assert code == 0, out[-3000:]
    assert "12/12 trials finished" in out
    assert out.count("| agent.batch_size=") == 4  # a row per setting, seeds aggregated
    assert (calm / "summary.png").stat().st_size > 10_000

    t0 = time.perf_counter()
    p = spawn(*STUDY, "--study-dir", str(hurt), log=tmp_path / "hurt.log")
    while len(_done(hurt)) < 5:
        assert p.poll() is None, p.log.read_text()[-3000:]
        time.sleep(1)
    p.send_signal(signal.SIGINT)
    code, out = finish(p, 600)
    assert code == 128 + signal.SIGINT, out[-3000:]
    done_before = _done(hurt)
    assert 5 <= len(done_before) < 12

    print(f"stopped after {time.perf_counter() - t0:.0f} s with {len(done_before)} trials done")
    t0 = time.perf_counter()
    code, out = finish(spawn("--resume", str(hurt), log=tmp_path / "resume.log"), 3000)
    print(f"resumed study: {time.perf_counter() - t0:.0f} s")
    print(out[-2500:])
    assert code == 0, out[-3000:]
    assert "12/12 trials finished" in out
    assert _figures(hurt) == _figures(calm)
    for name in done_before:  # not run again
        assert {r.get("resumed_at", -1) for r in _reports(hurt, name)} == {-1}
