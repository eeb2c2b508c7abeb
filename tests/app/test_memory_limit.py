"""The memory check against a real cgroup limit: refused below the estimate, completes above it.

``catchrl train`` estimates a run's memory (the games, the replay and the framework's own
footprint) and compares it with what its cgroup leaves free. In a memory cgroup 10 % below
the estimate the default run is refused in one line before TensorFlow loads; 10 % above it,
it trains to the end. Needs root and a cgroup memory controller (v1 or v2), else skipped.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from catchrl.api import make_config
from catchrl.training import DQNLearner

pytestmark = pytest.mark.faults  # real runs under a kernel memory limit

V1, V2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
RUN = ["--steps", "2000", "--no-progress", "--set", "run.eval_games=100"]  # the default preset


@contextlib.contextmanager
def memory_cgroup(limit: int) -> Iterator[tuple[Path, str]]:
    """A new memory cgroup of ``limit`` bytes: its folder and its peak-usage file's name."""
    name = f"catchrl-test-{os.getpid()}"
    if (V1 / "memory.limit_in_bytes").is_file():
        folder, files = V1 / name, ("memory.limit_in_bytes", "memory.max_usage_in_bytes")
    else:
        folder, files = V2 / name, ("memory.max", "memory.peak")
    try:
        folder.mkdir()
        (folder / files[0]).write_text(str(limit))
        with contextlib.suppress(OSError):  # no swapping instead of the limit
            (
                folder / ("memory.swappiness" if folder.parent == V1 else "memory.swap.max")
            ).write_text("0")
    except OSError as e:
        with contextlib.suppress(OSError):
            folder.rmdir()
        pytest.skip(f"cannot make a memory cgroup here: {e}")
    try:
        yield folder, files[1]
    finally:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _train_in(folder: Path, run_dir: Path) -> subprocess.CompletedProcess[str]:
    def enter() -> None:
        (folder / "cgroup.procs").write_text(str(os.getpid()))

    cmd = [sys.executable, "-m", "catchrl", "train", "--run-dir", str(run_dir), *RUN]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    try:
        return subprocess.run(
            cmd, preexec_fn=enter, capture_output=True, text=True, timeout=900, env=env
        )
    except subprocess.SubprocessError as e:  # entering the cgroup failed: not ours to use
        pytest.skip(f"cannot enter the memory cgroup: {e}")


def _need() -> int:
    return DQNLearner.estimate_bytes(make_config("fast")) + DQNLearner.framework_bytes


def test_ten_percent_below_the_estimate_is_refused_before_allocating(tmp_path):
    with memory_cgroup(int(_need() * 0.9)) as (folder, peak):
        done = _train_in(folder, tmp_path / "run")
        used = int((folder / peak).read_text())
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(done.stderr.splitlines()) == 1 and "needs ~" in done.stderr, done.stderr
    assert used < 150 << 20  # refused before TensorFlow and the replay were loaded
    assert not (tmp_path / "run").exists()


def test_ten_percent_above_the_estimate_trains_to_the_end(tmp_path):
    with memory_cgroup(int(_need() * 1.1)) as (folder, _):
        done = _train_in(folder, tmp_path / "run")
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert (tmp_path / "run" / "model.keras").is_file()
