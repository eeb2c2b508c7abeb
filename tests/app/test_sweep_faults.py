"""Studies that survive faults, on a real multi-node Ray cluster on this machine.

``ray.cluster_utils.Cluster`` starts a head (no CPUs: it only holds the driver's
job) and two worker nodes of one CPU each; the real ``catchrl sweep --address``
drives the study from a subprocess. One study runs undisturbed; the other loses a
worker node while two trials are mid-run (each past a checkpoint), and then its
driver is stopped with SIGTERM and resumed (``Tuner.restore``). Every trial must
finish with exactly the undisturbed study's results, the trials killed with the node
must have gone on from their runs' checkpoints on another node (each report to Tune
names its node and the step its attempt resumed at), and the trials finished before
SIGTERM must not run again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from catchrl.rundir import RunDir  # noqa: E402
from catchrl.stats import read_run  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1800)]

TINY = [
    "--preset", "fast-state",
    "--set", "run.total_steps=1584",  # 3 x 16 games of 33 steps
    "--set", "agent.observe=300",
    "--set", "agent.replay_capacity=5000",
    "--set", "run.eval_every=16",
    "--set", "run.eval_games=50",
    "--grid", "agent.lr=1e-3,3e-4",
    "--seeds", "2",
]  # fmt: skip
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_DEDUP_LOGS": "0"}
TIMING = {"wall_time", "train_cpu_s"}


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": 100 * 2**20},
    )
    workers = [_add_worker(c) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    c.shutdown()


def spawn(*args: str, log: Path) -> subprocess.Popen:
    """The real ``catchrl sweep`` in a subprocess, its output into ``log`` (never a full pipe)."""
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "catchrl", "sweep", *args],
            stdout=f, stderr=subprocess.STDOUT, text=True, env=ENV,
        )  # fmt: skip
    proc.log = log
    return proc


def finish(proc: subprocess.Popen, timeout: float = 1500) -> tuple[int, str]:
    """Wait for the driver; its exit code and output."""
    proc.wait(timeout=timeout)
    return proc.returncode, proc.log.read_text()


def _add_worker(c, tries: int = 3):
    """A worker node of one CPU (a raylet gets 30 s to start: retried on a loaded machine)."""
    for attempt in range(tries):
        try:
            return c.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        except Exception:  # Ray raises a bare Exception on a raylet's startup timeout
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def _sweep(address: str, *args: str, log: Path) -> subprocess.Popen:
    return spawn("--address", address, *args, log=log)


def _wait(condition, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the driver ended before {what}: {proc.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def trials(study: Path) -> list[dict]:
    """The study's finished trials (their runs wrote eval.json), by name."""
    return [read_run(p.parent) for p in sorted((study / "trials").glob("*/eval.json"))]


def _done(study: Path) -> set[str]:
    return {t["name"] for t in trials(study)}


def _mid_run(study: Path) -> list[str]:
    """Trials past their first checkpoint and not finished."""
    return [
        d.name
        for d in sorted((study / "trials").glob("*"))
        if not (d / "eval.json").exists() and RunDir(d).latest_checkpoint() is not None
    ]


def _reports(study: Path, name: str) -> list[dict]:
    """What a trial reported to Tune (Tune's result.json), oldest first."""
    path = study / "tune" / name / "result.json"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line) for line in lines if line.strip()]


def _on_node(pid: int, node) -> bool:
    """Whether process ``pid`` runs under the raylet of the Ray node ``node`` (its workers)."""
    raylet = node.all_processes["raylet"][0].process.pid
    while pid > 1:
        if pid == raylet:
            return True
        try:  # /proc/PID/stat: "pid (name) state ppid ..."
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def _lose(c, node) -> None:
    """Lose ``node`` as a machine is lost: its Ray processes and every worker under it die.

    ``remove_node`` kills the node's own processes; its workers only exit once they notice,
    and on a loaded machine one may go on training its trial meanwhile (holding the run).
    """
    workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    workers = [pid for pid in workers if _on_node(pid, node)]
    c.remove_node(node, allow_graceful=False)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _mid_run_on(study: Path, node) -> list[str]:
    """Mid-run trials whose run is held (its lock's pid) by a worker of ``node``."""
    out = []
    for name in _mid_run(study):
        try:
            pid = json.loads((study / "trials" / name / ".lock").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            continue
        if _on_node(pid, node):
            out.append(name)
    return out


def _figures(study: Path) -> dict[str, dict]:
    """Each finished trial's run: config, steps, test score, metrics and evaluations."""

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in TIMING}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    out = {}
    for run in trials(study):
        rows = RunDir(study / "trials" / run["name"]).read_metrics()
        keep = ("game", "loss", "wins", "epsilon", "steps", "win_rate_100", "reward")
        out[run["name"]] = {
            **strip(run),
            "metrics": {k: rows[k].tolist() for k in keep},
            "test": json.loads((study / "trials" / run["name"] / "eval.json").read_text()),
        }
    return out


def test_node_loss_and_driver_stop_leave_the_same_results(cluster, tmp_path):
    c, workers = cluster
    calm, hurt = tmp_path / "calm", tmp_path / "hurt"

    code, out = finish(
        _sweep(c.address, *TINY, "--study-dir", str(calm), log=tmp_path / "calm.log")
    )
    assert code == 0, out[-3000:]
    assert "4/4 trials finished" in out and "| agent.lr=0.001 | " in out
    assert (calm / "summary.png").is_file() and (calm / "summary.md").is_file()
    reference = _figures(calm)
    assert len(reference) == 4
    for name in reference:  # one attempt each, none resumed
        assert {r.get("resumed_at", -1) for r in _reports(calm, name)} == {-1}

    proc = _sweep(c.address, *TINY, "--study-dir", str(hurt), log=tmp_path / "hurt.log")
    # Both workers busy, each trial past a checkpoint: take away the node one runs on.
    lost = workers[1]
    _wait(
        lambda: len(_mid_run(hurt)) >= 2 and _mid_run_on(hurt, lost),
        600,
        proc,
        "two trials past a checkpoint, one on the node to remove",
    )
    victims = _mid_run_on(hurt, lost)
    _lose(c, lost)
    # Stop the driver once a trial has finished and another has a checkpoint.
    _wait(lambda: _done(hurt) and _mid_run(hurt), 900, proc, "one trial finished")
    done_before = _done(hurt)
    stamps = {n: (hurt / "trials" / n / "model.keras").stat().st_mtime_ns for n in done_before}
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc)
    assert code == 128 + signal.SIGTERM, out[-3000:]
    assert f"catchrl sweep --resume {hurt}" in out
    assert len(_done(hurt)) < 4

    code, out = finish(_sweep(c.address, "--resume", str(hurt), log=tmp_path / "resume.log"))
    assert code == 0, out[-3000:]
    assert "4/4 trials finished" in out

    assert _figures(hurt) == reference
    # finished trials were not run again
    for name in done_before:
        assert (hurt / "trials" / name / "model.keras").stat().st_mtime_ns == stamps[name]
    # the trial killed with the node went on from its checkpoint (retried, or on --resume)
    resumed = [r for n in victims for r in _reports(hurt, n) if r.get("resumed_at", -1) > 0]
    assert resumed, {n: _reports(hurt, n) for n in reference}
    assert all(r["node"] != lost.node_id for r in resumed)
