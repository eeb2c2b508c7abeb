"""What the terminal shows: no TensorFlow logs unless --verbose, no TensorFlow in SB3 runs
(and no Ray in Keras or SB3 runs), the run directory first, TensorBoard serving SB3's tag
names, the bar's total = the steps trained, plain-text help.

The commands run in subprocesses with the user's environment (the test suite's own
``TF_CPP_MIN_LOG_LEVEL`` removed), as a user would run them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from catchrl.cli import build_parser
from catchrl.monitor import Progress

# A TensorFlow/absl C++ log line ("I0000 00:00:... cpu_feature_guard.cc:...]", "W tensorflow/...",
# "WARNING: All log messages before absl::InitializeLog() ...") or its Python-side loggers.
TF_LOG = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d|[IWEF] tensorflow/|WARNING: All log messages before absl)"
    r"|\.cc:\d+\]|^(WARNING|INFO):(absl|tensorflow):|oneDNN|XLA service|TensorFlow binary",
    re.M,
)
# Runs a command in-process, then reports which frameworks it imported (Ray: none of these runs).
PROBE = (
    "import sys; from catchrl.cli import main; rc = main(sys.argv[1:]); "
    "print('imported:', sorted(m for m in ('tensorflow', 'torch', 'ray') if m in sys.modules)); "
    "sys.exit(rc)"
)


def _user_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # conftest quiets the suite; users have no such line
    return env


def _catchrl(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=_user_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A Keras DQN trained for 2,000 steps on state, by ``catchrl train`` in a subprocess."""
    run_dir = tmp_path_factory.mktemp("quiet") / "state"
    done = _catchrl(
        "train",
        "--preset",
        "fast-state",
        "--steps",
        "2000",
        "--run-dir",
        str(run_dir),
        "--no-progress",
        "--set",
        "run.eval_games=20",
        "--set",
        "run.eval_every=16",
    )
    assert done.returncode == 0, done.stderr
    return run_dir, done


def test_keras_train_prints_no_tensorflow_log_and_verbose_shows_them(keras_run) -> None:
    run_dir, train = keras_run
    assert train.stderr == "", train.stderr  # no TensorFlow line, not even XLA's
    assert train.stdout.splitlines()[0] == f"run directory: {run_dir}"  # first, before training
    assert "imported: ['tensorflow']" in train.stdout  # a Keras run: TensorFlow, no torch
    ev = _catchrl("eval", str(run_dir), "--games", "50")
    assert ev.returncode == 0 and ev.stderr == "", ev.stderr
    assert re.search(r"^state: win rate .*\(\d+/50\)", ev.stdout, re.M), ev.stdout
    loud = _catchrl("eval", str(run_dir), "--games", "5", "--verbose")
    assert TF_LOG.search(loud.stderr), loud.stderr  # the pattern finds them when they are there


def test_sb3_train_and_eval_do_not_import_tensorflow(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    run_dir = tmp_path / "sb3"
    argv = ["--preset", "fast-state", "--steps", "2000", "--run-dir", str(run_dir)]
    every = ["--set", "run.eval_games=20", "--set", "run.eval_every=16"]
    train = _catchrl("train", "--algo", "sb3-dqn", *argv, "--no-progress", *every)
    assert train.returncode == 0, train.stderr
    assert "imported: ['torch']" in train.stdout, train.stdout
    assert train.stderr == "", train.stderr  # no TensorFlow line, not even XLA's
    ev = _catchrl("eval", str(run_dir), "--sb3", "--games", "50")
    assert ev.returncode == 0, ev.stderr
    assert "imported: ['torch']" in ev.stdout and ev.stderr == ""
    # written without TensorFlow, SB3's tags once each: the loop's, not SB3's too
    steps = _tensorboard(run_dir)
    assert SB3_TAGS | {"train/learning_rate", "train/n_updates"} <= set(steps), steps
    assert set(steps["train/loss"]) <= set(steps["time/episodes"]), steps
    assert all(s == sorted(set(s)) for s in steps.values()), steps  # one point per step
    last_row = (run_dir / "metrics.tsv").read_text().splitlines()[-1].split("\t")
    assert steps["time/episodes"][-1] == int(last_row[4])  # at env steps, as SB3 writes them


def _tensorboard(run_dir: Path) -> dict[str, list[int]]:
    """The run's TensorBoard tags and the steps of each, read back by TensorBoard itself."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    tags = acc.Tags()
    steps = {tag: [e.step for e in acc.Scalars(tag)] for tag in tags["scalars"]}
    return steps | {tag: [e.step for e in acc.Tensors(tag)] for tag in tags["tensors"]}


SB3_TAGS = {
    "rollout/ep_rew_mean",
    "rollout/ep_len_mean",
    "rollout/exploration_rate",
    "train/loss",
    "time/fps",
    "eval/mean_reward",
    "eval/mean_ep_length",
}


def _served_tags(run_dir: Path, wanted: set[str]) -> dict[str, list[str]]:
    """``tensorboard --logdir RUN`` from the venv, asked over its HTTP API as its web page asks."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    tensorboard = Path(sys.executable).parent / "tensorboard"
    server = subprocess.Popen(
        [str(tensorboard), "--logdir", str(run_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://localhost:{port}/data/plugin/scalars/tags"
    deadline = time.monotonic() + 90
    try:
        while True:  # it takes a few seconds to start, and reads the events in the background
            assert server.poll() is None, server.communicate()[1]  # it exited: say why
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    tags = json.load(response)
                if wanted <= set(tags.get("tb", ())) or time.monotonic() > deadline:
                    return tags
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_tensorboard_serves_sb3_s_tag_names_each_written_once(keras_run) -> None:
    run_dir, _ = keras_run
    steps = _tensorboard(run_dir)
    keras_tags = {"rollout/win_rate_100", "eval/win_rate_ci95_low", "train/learning_rate"}
    assert SB3_TAGS | keras_tags <= set(steps), steps
    games = (run_dir / "metrics.tsv").read_text().splitlines()[1:]
    assert all(s == sorted(set(s)) for s in steps.values()), steps  # each tag, one writer
    assert int(games[-1].split("\t")[4]) == steps["time/episodes"][-1]  # at env steps
    assert set(steps["train/loss"]) <= set(steps["time/episodes"])
    served = _served_tags(run_dir, SB3_TAGS | keras_tags)
    assert list(served) == ["tb"], served  # one run: the events in RUN/tb
    assert SB3_TAGS | keras_tags <= set(served["tb"]), served


def test_a_sweep_trial_writes_nothing_on_stderr(tmp_path: Path) -> None:
    """The driver's stderr, and the trial's own: its Ray worker's log (``log_to_driver`` is off)."""
    pytest.importorskip("ray")
    from ray._private.ray_constants import LOG_PREFIX_ACTOR_NAME, LOG_PREFIX_JOB_ID

    ray_tmp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths have a length limit
    env = _user_env() | {"RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)  # our own local Ray, as `catchrl sweep` starts by default
    study = tmp_path / "study"
    argv = ["sweep", "--preset", "fast-state", "--set", "run.total_steps=1000", "--seeds", "1"]
    argv += ["--set", "agent.observe=300", "--set", "run.eval_every=16"]  # it trains, evaluates
    argv += ["--set", "run.eval_games=100"]
    argv += ["--grid", "agent.lr=1e-3", "--num-cpus", "1", "--study-dir", str(study)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "catchrl", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        logs = sorted(Path(ray_tmp).glob("ray/session_*/logs/worker-*.err"))
        trial_err = {log.name: log.read_text() for log in logs}
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    line = r"\[1/1\] agent\.lr=0\.001 seed 0: test [\d.]+ % \(best\.keras from step (\d+) of 1008\)"
    kept = re.search(line, done.stdout)
    assert kept, done.stdout
    best = json.loads((study / "trials" / "t000-seed0" / "best.json").read_text())
    assert int(kept[1]) == best["steps"]
    rows = (study / "trials" / "t000-seed0" / "metrics.tsv").read_text().splitlines()[1:]
    assert float(rows[-1].split("\t")[1]) > 0  # a loss: the trial trained in TensorFlow
    assert logs, "no Ray worker log"
    markers = (LOG_PREFIX_JOB_ID, LOG_PREFIX_ACTOR_NAME)  # Ray's own, read by its log monitor
    for name, text in trial_err.items():
        lines = [line for line in text.splitlines() if not line.startswith(markers)]
        assert _without_ray_s_sigterm(lines) == [], (name, text)


def _without_ray_s_sigterm(lines: list[str]) -> list[str]:
    """A worker's log less Ray's own SIGTERM at shutdown landing in a weakref callback.

    Ray stops an idle worker with SIGTERM, and its handler raises SystemExit; inside a
    callback Python reports that as "Exception ignored in: ..." ending in "SystemExit: 1".
    That is Ray's teardown, in a log no user sees, not the trial's output.
    """
    out, i = [], 0
    while i < len(lines):
        if lines[i].startswith("Exception ignored in:"):
            end = next((j for j in range(i, len(lines)) if lines[j].startswith("SystemExit")), -1)
            if end > 0 and any("sigterm_handler" in line for line in lines[i:end]):
                i = end + 1
                continue
        out.append(lines[i])
        i += 1
    return out


def test_the_bar_total_becomes_the_steps_trained(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress(8000, enabled=True)
    bar.update(7920, games=240)
    bar.finish(8016)  # the last vector step passed the 8,000-step budget, mid-game
    bar.close()
    shown = capsys.readouterr().err
    assert bar.total == 8016 and shown.rstrip().endswith("games=240]")
    assert "8016/8016" in shown.splitlines()[-1].split("\r")[-1]
    early = Progress(8000, enabled=False)
    early.update(3300)
    early.finish(3300)  # stopped by its target win rate: done at 3,300
    assert early.total == 3300


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _parsers(child, (*path, name))
    return found


def test_help_is_plain_text_and_every_command_is_described() -> None:
    parsers = _parsers(build_parser())
    assert len(parsers) > 10
    for path, parser in parsers:
        text = parser.format_help()
        name = " ".join(("catchrl", *path))
        assert "``" not in text and not re.search(r":[a-z]+:`", text), (name, text)
        if path:
            assert parser.description, f"{name} has no description"
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if leaf and path:
            assert "--verbose" in text, name
