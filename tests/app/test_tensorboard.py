"""``tensorboard --logdir RUN`` from the virtualenv serves a run's tags under SB3's names.

TensorBoard runs as a user starts it (the venv's console script) and is asked over its HTTP
API, as its web page asks it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from catchrl.cli import main

SB3_TAGS = {
    "rollout/ep_rew_mean",
    "rollout/ep_len_mean",
    "rollout/exploration_rate",
    "train/loss",
    "train/learning_rate",
    "time/fps",
    "eval/mean_reward",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _get_json(url: str, deadline: float, server: subprocess.Popen) -> dict:
    """GET ``url`` until TensorBoard answers (it takes a few seconds to start)."""
    while True:
        assert server.poll() is None, server.communicate()[1]  # it exited: say why
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 steps of ``fast-state``, training from step 300 (``quick_run`` never trains)."""
    run_dir = tmp_path_factory.mktemp("tb") / "run"
    argv = ["train", "--preset", "fast-state", "--steps", "1000", "--run-dir", str(run_dir)]
    sets = ["agent.observe=300", "run.eval_every=10", "run.eval_games=20"]
    assert main([*argv, "--no-progress", *(f"--set={s}" for s in sets)]) == 0
    return run_dir


def test_tensorboard_lists_the_run_s_tags_with_sb3_names(trained_run: Path) -> None:
    tensorboard = Path(sys.executable).parent / "tensorboard"
    port = _free_port()
    server = subprocess.Popen(
        [str(tensorboard), "--logdir", str(trained_run), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://localhost:{port}/data/plugin/scalars/tags"
    try:
        deadline = time.monotonic() + 90
        tags = _get_json(url, deadline, server)
        while not SB3_TAGS <= set(tags.get("tb", ())) and time.monotonic() < deadline:
            time.sleep(0.5)  # TensorBoard reads the events in the background: not all at once
            tags = _get_json(url, deadline, server)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert list(tags) == ["tb"], tags  # one run: the events in RUN/tb
    assert SB3_TAGS <= set(tags["tb"]), tags
