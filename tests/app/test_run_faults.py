"""Runs a server can trust: the lock, signals, mid-game checkpoints, bad run directories, full disk.

Each signal test runs the real ``catchrl train`` in a subprocess, signals it at
a random moment, and resumes it: the result must equal an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from catchrl.cli import main
from catchrl.rundir import RunDir

pytestmark = pytest.mark.faults  # run apart: `pytest -m faults` (README, .ci/run)

QUICK = [
    "--preset",
    "fast-state",
    "--no-progress",
    "--set",
    "agent.observe=300",
    "--set",
    "agent.replay_capacity=5000",
    "--set",
    "run.eval_games=50",
    "--set",
    "run.eval_every=32",
    "--set",
    "run.target_win_rate=0",  # runs go on until stopped
]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "catchrl", "train", *args]


def _terminal_signals() -> None:
    """A run started from a terminal: Ctrl-C acts even where pytest itself was started in the
    background (``cmd &`` ignores SIGINT, and a run keeps ignored signals ignored, as nohup's)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        _cmd(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        preexec_fn=_terminal_signals,
    )


def _latest_state(run_dir: Path) -> dict | None:
    try:
        latest = RunDir(run_dir).latest_checkpoint()
        return None if latest is None else RunDir.load_checkpoint(latest)[1]
    except Exception:  # mid-write: try again
        return None


def _wait(run_dir: Path, proc: subprocess.Popen, min_steps: int = 1, limit: float = 240) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        state = _latest_state(run_dir)
        if state is not None and state["steps"] >= min_steps:
            return state
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint appeared: {proc.communicate()[0][-3000:]}")


def _metrics(run_dir: Path) -> np.ndarray:
    """metrics.tsv without the wall-clock columns."""
    lines = (run_dir / "metrics.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    keep = [i for i, c in enumerate(header) if c not in ("steps_per_s", "wall_time")]
    return np.array([[row.split("\t")[i] for i in keep] for row in lines[1:]])


def _weights(run_dir: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(run_dir / "model.keras", compile=False).get_weights()


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- the lock -----------------------------------------------------------------------------


def test_a_second_trainer_is_refused_and_metrics_stay_contiguous(tmp_path, capsys):
    run_dir = tmp_path / "run"
    proc = _spawn(*QUICK, "--steps", "400000", "--run-dir", str(run_dir))
    _wait(run_dir, proc)
    # a second fresh run, and a resume, while the first one trains
    for argv in (
        ["train", *QUICK, "--steps", "900", "--run-dir", str(run_dir)],
        ["train", "--run-dir", str(run_dir), "--resume", "--no-progress"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert f"in use by pid {proc.pid} on host " in err, err
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    games = _metrics(run_dir)[:, 0].astype(int)
    assert games.tolist() == list(range(1, len(games) + 1))
    assert not (run_dir / ".lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    proc = _spawn(*QUICK, "--steps", "400000", "--run-dir", str(run_dir))
    _wait(run_dir, proc)
    proc.kill()
    proc.wait()
    holder = json.loads((run_dir / ".lock").read_text())
    assert holder["pid"] == proc.pid  # left behind by kill -9
    state = _latest_state(run_dir)
    steps = str(state["steps"] + 560)  # past the next game boundary
    argv = ["train", "--run-dir", str(run_dir), "--resume", "--steps", steps, "--no-progress"]
    assert main(argv) == 0
    games = _metrics(run_dir)[:, 0].astype(int)
    assert games.tolist() == list(range(1, len(games) + 1)) and len(games) > state["games"]


def test_lock_in_process(tmp_path):
    from catchrl.errors import RunDirLocked

    a, b = RunDir(tmp_path / "r"), RunDir(tmp_path / "r")
    with a.lock():
        with pytest.raises(RunDirLocked, match=f"pid {os.getpid()}"):
            b.acquire_lock()
    with b.lock():  # released: the next one gets it
        assert json.loads(b.lock_path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / "r").exists()  # taking the lock created it; it stayed empty


# -- signals ------------------------------------------------------------------------------


SIGNAL_STEPS = "6400"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The run the interrupted ones must equal (checkpoints do not change what is learnt)."""
    whole = tmp_path_factory.mktemp("runs") / "whole"
    assert main(["train", *QUICK, "--steps", SIGNAL_STEPS, "--run-dir", str(whole)]) == 0
    return whole


def test_nohup_s_ignored_sighup_stays_ignored(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(*QUICK, "--run-dir", str(run)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # as nohup does
    )
    first = _wait(run, proc, min_steps=300)
    proc.send_signal(signal.SIGHUP)
    later = _wait(run, proc, min_steps=first["steps"] + 100)  # still training
    assert proc.poll() is None and later["steps"] > first["steps"]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_at_a_random_moment_checkpoints_and_resume_is_exact(
    tmp_path, uninterrupted, signum
):
    steps, whole, parts = SIGNAL_STEPS, uninterrupted, tmp_path / "parts"
    # eval_every=1: a checkpoint every round, so the signal often lands during one
    args = [*QUICK, "--set", "run.eval_every=1", "--steps", steps, "--run-dir", str(parts)]
    proc = _spawn(*args)
    _wait(parts, proc, min_steps=300)
    time.sleep(random.Random(signum).uniform(0.0, 1.0))
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, out[-2000:]
    state = _latest_state(parts)
    rows = _metrics(parts)
    assert len(rows) == state["games"]  # the checkpoint is the last thing the run did
    assert 0 < state["steps"] < int(steps)
    assert main(["train", "--run-dir", str(parts), "--resume", "--no-progress"]) == 0
    for wa, wb in zip(_weights(whole), _weights(parts), strict=True):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(_metrics(whole), _metrics(parts))


def test_sigterm_mid_round_on_pixels_resumes_exactly(tmp_path):
    """The ``fast`` pixel preset: a SIGTERM at a random moment still checkpoints, and the
    resumed run equals one never stopped."""
    pixels = ["--preset", "fast", *QUICK[2:], "--set", "agent.replay_capacity=3000"]
    pixels += ["--set", "run.eval_every=1", "--set", "run.eval_games=20"]
    steps, whole, parts = "2400", tmp_path / "whole", tmp_path / "parts"
    assert main(["train", *pixels, "--steps", steps, "--run-dir", str(whole)]) == 0
    proc = _spawn(*pixels, "--steps", steps, "--run-dir", str(parts))
    _wait(parts, proc, min_steps=800)  # learning since step 300
    time.sleep(random.Random(11).uniform(0.0, 0.5))
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    assert 0 < _latest_state(parts)["steps"] < int(steps)
    assert main(["train", "--run-dir", str(parts), "--resume", "--no-progress"]) == 0
    for wa, wb in zip(_weights(whole), _weights(parts), strict=True):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(_metrics(whole), _metrics(parts))


def test_ctrl_c_in_a_1000_ball_game_stops_mid_game_and_resumes_exactly(tmp_path):
    long_game = [*QUICK, "--set", "env.balls_per_game=1000", "--set", "run.eval_games=0"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    proc = _spawn(*long_game, "--steps", "10000000", "--run-dir", str(parts))
    while proc.poll() is None and not (parts / "metrics.tsv").exists():
        time.sleep(0.05)
    time.sleep(3.0)  # training, mid-game (a game is 33,000 steps of each of 16 games)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)  # not minutes: the game in flight is not finished
    assert proc.returncode == 130, out[-2000:]
    state = _latest_state(parts)
    assert state["games"] == 0 and state["steps"] > 0  # mid-game
    # resumed to a budget past the stop, it equals a run that was never stopped
    steps = str(state["steps"] + 1600)
    assert main(["train", *long_game, "--steps", steps, "--run-dir", str(whole)]) == 0
    argv = ["train", "--run-dir", str(parts), "--resume", "--steps", steps, "--no-progress"]
    assert main(argv) == 0
    for wa, wb in zip(_weights(whole), _weights(parts), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_a_second_signal_leaves_the_last_checkpoint_valid(tmp_path):
    run_dir = tmp_path / "run"
    args = [*QUICK, "--set", "run.eval_every=1", "--steps", "400000", "--run-dir"]
    proc = _spawn(*args, str(run_dir))
    _wait(run_dir, proc, min_steps=300)
    # two different signals: two of one kind sent while a checkpoint blocks them would
    # merge into one, and the run would stop gracefully instead
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode in (128 + signal.SIGTERM, 128 + signal.SIGINT), out[-2000:]
    assert "stopped at once by a second signal; resume with" in out, out[-2000:]
    RunDir.load_checkpoint(RunDir(run_dir).latest_checkpoint())  # complete and verified
    state = _latest_state(run_dir)
    argv = ["train", "--run-dir", str(run_dir), "--resume", "--no-progress"]
    assert main([*argv, "--steps", str(state["steps"] + 160)]) == 0


# -- bad run directories: one line, exit 2, nothing changed ------------------------------------


@pytest.fixture
def finished(quick_run) -> Path:
    """A finished Keras DQN run (tests/conftest.py), copied before it is spoilt."""
    return quick_run


def _ckpt(run_dir: Path) -> Path:
    return RunDir(run_dir).latest_checkpoint()


SPOIL = {
    "config.toml not UTF-8": (lambda r: (r / "config.toml").write_bytes(b"\xff\xfe x"), "UTF-8"),
    "manifest not UTF-8": (
        lambda r: (_ckpt(r) / "manifest.json").write_bytes(b"\x80{}"),
        "UTF-8",
    ),
    "manifest {}": (lambda r: (_ckpt(r) / "manifest.json").write_text("{}"), "incomplete"),
    "manifest a list": (lambda r: (_ckpt(r) / "manifest.json").write_text("[1]"), "JSON object"),
    "manifest missing a file": (
        lambda r: (_ckpt(r) / "manifest.json").write_text(
            json.dumps(
                {
                    k: v
                    for k, v in json.loads((_ckpt(r) / "manifest.json").read_text()).items()
                    if k != "replay.npz"
                }
            )
        ),
        "incomplete",
    ),
    "state.json not UTF-8": (
        lambda r: _rewrite_with_manifest(_ckpt(r) / "state.json", b"\xff\xff"),
        "UTF-8",
    ),
    "state.json a list": (
        lambda r: _rewrite_with_manifest(_ckpt(r) / "state.json", b"[]"),
        "not a JSON object",
    ),
    "metrics.tsv shorter than recorded": (
        lambda r: (r / "metrics.tsv").write_text("game\n"),
        "truncated or replaced",
    ),
}


def _rewrite_with_manifest(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    manifest_path = path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[path.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("case", sorted(SPOIL))
def test_a_spoilt_run_directory_is_one_line_and_untouched(finished, tmp_path, capsys, case):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished, run_dir)
    spoil, message = SPOIL[case]
    spoil(run_dir)
    before = _snapshot(run_dir)
    argv = ["train", "--run-dir", str(run_dir), "--resume", "--steps", "2400", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert _snapshot(run_dir) == before


def test_a_replay_npz_declaring_a_huge_array_is_refused_on_resume_with_rss_flat(finished, tmp_path):
    """The checkpoint's replay.npz rewritten (manifest fixed): 1 GiB of zeros packed in ~5 MB."""
    run_dir = tmp_path / "copy"
    shutil.copytree(finished, run_dir)
    replay = _ckpt(run_dir) / "replay.npz"
    with np.load(replay, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    biggest = max(arrays, key=lambda k: arrays[k].nbytes)
    n = 1 << 30
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, a in arrays.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                if name != biggest:
                    np.lib.format.write_array(f, a)
                    continue
                header = {"descr": "|u1", "fortran_order": False, "shape": (n,)}
                np.lib.format.write_array_header_1_0(f, header)
                for _ in range(n >> 22):
                    f.write(bytes(1 << 22))
    _rewrite_with_manifest(replay, buffer.getvalue())
    assert replay.stat().st_size < 8_000_000
    before = _snapshot(run_dir)
    code = (  # VmHWM: this process's peak RSS (ru_maxrss would count the forked parent's)
        "import re, sys\n"
        "from catchrl.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read()\n"
        "print(code, int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)\n"
    )
    argv = ["train", "--run-dir", str(run_dir), "--resume", "--steps", "2400", "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=ENV, timeout=300
    )
    exit_code, peak_mb = map(int, done.stdout.split())
    err = done.stderr.strip()
    assert exit_code == 2 and len(err.splitlines()) == 1, err
    assert f"checkpoint file {replay}: its arrays declare" in err, err
    assert peak_mb < 1024, peak_mb  # reading the member would take 1 GiB more
    assert _snapshot(run_dir) == before


def test_fresh_train_refuses_a_foreign_folder_and_an_empty_run_dir(tmp_path, capsys):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    before = _snapshot(foreign)
    assert main(["train", *QUICK, "--steps", "100", "--run-dir", str(foreign)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty and not a catchrl run (holiday.jpg)" in err and len(err.splitlines()) == 1
    assert _snapshot(foreign) == before and sorted(os.listdir(foreign)) == ["holiday.jpg"]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["train", *QUICK, "--steps", "100", "--run-dir", ""]) == 2
    finally:
        os.chdir(cwd)
    assert "--run-dir is empty" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["photos"]


def test_a_run_killed_before_its_first_checkpoint_can_be_resumed(tmp_path):
    run_dir = tmp_path / "early"
    never = ["--set", "run.eval_every=0", "--set", "run.eval_games=0"]  # no checkpoint
    proc = _spawn(*QUICK, *never, "--steps", "400000", "--run-dir", str(run_dir))
    while proc.poll() is None and not (run_dir / "metrics.tsv").exists():
        time.sleep(0.01)
    time.sleep(1.0)
    proc.kill()
    proc.wait()
    assert _latest_state(run_dir) is None and (run_dir / "config.toml").is_file()
    argv = ["train", "--run-dir", str(run_dir), "--resume", "--steps", "700", "--no-progress"]
    assert main(argv) == 0  # started again from its config.toml
    assert (run_dir / "model.keras").is_file()
    games = _metrics(run_dir)[:, 0].astype(int)
    assert games.tolist() == list(range(1, 17))  # 700 steps: one game of each of 16, no rows kept


@pytest.mark.parametrize(
    ("replay", "lower"),
    [
        (["--set", "agent.replay_capacity=9000000"], "lower agent.replay_capacity or env.num_envs"),
        (["--algo", "sb3-dqn", "--set", "sb3.buffer_size=9000000"], "lower sb3.buffer_size or"),
    ],
)
def test_an_impossible_configuration_is_refused_before_allocating(tmp_path, capsys, replay, lower):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # within every field's bounds, but 9M transitions of 80 x 80 pixels need ~55 GiB
    big = ["--preset", "fast", *replay, "--set", "env.frame_size=80"]
    assert main(["train", *QUICK, *big, "--run-dir", str(tmp_path / "big")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs ~" in err and "GB available" in err, err
    assert lower in err, err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB
    assert not (tmp_path / "big").exists()


# -- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_one_clear_error_and_resume_works_after(small_disk, capsys):
    run_dir = small_disk / "run"
    proc = subprocess.Popen(
        _cmd(*QUICK, "--steps", "400000", "--run-dir", str(run_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    _wait(run_dir, proc)
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # fill the disk to the last byte
        for block in (65536, 1):
            try:
                while True:
                    f.write(b"\0" * block)
            except OSError:
                pass
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 2, (out[-1000:], err[-2000:])
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert len(lines) == 1 and "no space left" in lines[0], err[-2000:]
    assert "Traceback" not in err
    before = _snapshot(run_dir)  # --resume while the disk is still full: one line, no change
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no space left" in err, err
    assert _snapshot(run_dir) == before
    filler.unlink()
    state = _latest_state(run_dir)
    steps = str(state["steps"] + 560)  # past the next game boundary
    argv = ["train", "--run-dir", str(run_dir), "--resume", "--steps", steps, "--no-progress"]
    assert main(argv) == 0
    games = _metrics(run_dir)[:, 0].astype(int)
    assert games.tolist() == list(range(1, len(games) + 1))
    leftovers = [p.name for p in run_dir.rglob("*") if re.search(r"\.tmp\d+", p.name)]
    assert leftovers == []


# -- SB3 through the same loop ------------------------------------------------------------------

SB3 = [
    "--algo",
    "sb3-dqn",
    "--preset",
    "fast-state",
    "--no-progress",
    "--set",
    "run.eval_games=50",
    "--set",
    "run.eval_every=32",
    "--set",
    "run.target_win_rate=0",  # the whole budget, whatever 50 validation games say
]


def _sb3_params(run_dir: Path) -> dict[str, np.ndarray]:
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import DQN

    model = DQN.load(run_dir / "model.zip", device="cpu")
    return {k: v.numpy() for k, v in model.policy.state_dict().items()}


def test_sb3_sigterm_then_resume_is_exact(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    steps = "4800"
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", *SB3, "--steps", steps, "--run-dir", str(whole)]) == 0
    proc = _spawn(*SB3, "--steps", steps, "--run-dir", str(parts))
    _wait(parts, proc, min_steps=600)
    time.sleep(random.Random(7).uniform(0.0, 1.0))
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    state = _latest_state(parts)
    assert len(_metrics(parts)) == state["games"] and state["steps"] < int(steps)
    # the same rules as the DQN: --preset/--algo refused on resume, SB3 needs --sb3
    assert main(["train", "--run-dir", str(parts), "--resume", "--algo", "sb3-ppo"]) == 2
    assert "--resume continues the run with its saved config" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(parts), "--resume", "--no-progress"]) == 2
    assert "pass --sb3" in capsys.readouterr().err
    # its own budget: resuming without --steps trains to the run's 4,800 steps, not beyond
    assert main(["train", "--run-dir", str(parts), "--resume", "--sb3", "--no-progress"]) == 0
    assert _latest_state(parts)["steps"] == _latest_state(whole)["steps"]
    a, b = _sb3_params(whole), _sb3_params(parts)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(_metrics(whole), _metrics(parts))


class _Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_in_an_sb3_checkpoint_is_not_run_without_sb3(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    import pickle

    run_dir = tmp_path / "run"
    assert main(["train", *SB3, "--steps", "1100", "--run-dir", str(run_dir)]) == 0
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Planted(marker))
    ckpt = RunDir(run_dir).latest_checkpoint()
    npz = ckpt / "sb3_replay.npz"
    with open(npz, "wb") as f:
        np.savez(f, pkl=np.frombuffer(payload, dtype=np.uint8))
    _rewrite_with_manifest(npz, npz.read_bytes())
    before = _snapshot(run_dir)
    argv = ["train", "--run-dir", str(run_dir), "--resume", "--steps", "2200", "--no-progress"]
    assert main(argv) == 2
    assert "pass --sb3" in capsys.readouterr().err
    assert not marker.exists() and _snapshot(run_dir) == before
    pickle.loads(payload)  # the payload is live: it would have run
    assert marker.exists()


def test_sb3_trains_with_no_evaluations(tmp_path):
    pytest.importorskip("stable_baselines3")
    run_dir = tmp_path / "run"
    argv = ["train", *SB3, "--set", "run.eval_games=0", "--steps", "700", "--run-dir"]
    assert main([*argv, str(run_dir)]) == 0
    assert (run_dir / "model.zip").is_file() and not (run_dir / "eval.json").exists()
