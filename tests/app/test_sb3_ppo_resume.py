"""SB3 PPO stopped by a signal and resumed: weights, metrics, evaluations equal the straight run.

PPO learns once per rollout (``sb3.n_steps`` x ``env.num_envs`` steps), so a signal lands
mid-rollout; the resumed run must still write the straight run's ``metrics.tsv``, loss column
included (issue 32, item 8). The DQN and SB3's DQN: tests/app/test_run_faults.py.
"""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest

from catchrl.cli import main
from tests.app.test_run_faults import _latest_state, _metrics, _spawn, _wait

pytest.importorskip("stable_baselines3")
pytestmark = pytest.mark.faults  # run apart: `pytest -m faults`

PPO = [
    "--algo",
    "sb3-ppo",
    "--preset",
    "fast-state",
    "--no-progress",
    "--set",
    "run.eval_games=50",
    "--set",
    "run.eval_every=16",
    "--set",
    "run.target_win_rate=0",  # the whole budget, whatever 50 validation games say
]
STEPS = "4000"  # about 8 rollouts of 512 steps


def _ppo_params(run_dir) -> dict[str, np.ndarray]:
    from stable_baselines3 import PPO as SB3PPO

    model = SB3PPO.load(run_dir / "model.zip", device="cpu")
    return {k: v.numpy() for k, v in model.policy.state_dict().items()}


def test_ppo_stopped_mid_rollout_resumes_to_the_straight_run(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", *PPO, "--steps", STEPS, "--run-dir", str(whole)]) == 0
    proc = _spawn(*PPO, "--steps", STEPS, "--run-dir", str(parts))
    _wait(parts, proc, min_steps=700)  # past the first rollout and an evaluation
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)  # the pending logs are lost at any mid-rollout stop
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    stopped = _latest_state(parts)
    assert stopped["steps"] < int(STEPS)
    argv = ["train", "--run-dir", str(parts), "--resume", "--sb3", "--no-progress"]
    assert main(argv) == 0
    assert _latest_state(parts)["steps"] == _latest_state(whole)["steps"]
    np.testing.assert_array_equal(_metrics(whole), _metrics(parts))  # the loss column too
    a, b = _ppo_params(whole), _ppo_params(parts)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    evals = [json.loads((run / "evals.json").read_text()) for run in (whole, parts)]
    drop = ("wall_time", "train_cpu_s")
    assert [{k: v for k, v in e.items() if k not in drop} for e in evals[0]] == [
        {k: v for k, v in e.items() if k not in drop} for e in evals[1]
    ]
