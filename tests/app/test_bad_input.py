"""Bad numbers and files on the command line: one line on stderr naming it, exit 2, nothing done.

Every numeric option of eval / watch / play / plot / bench / data, and the
config's ranges through ``train --set``. Each runs in an empty working folder,
which must stay empty (default outputs such as ``runs/race`` land there). Bad
files and folders (a config nested too deep, a spoilt study, impossible run
directories) leave the working folder as it was, byte for byte.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from catchrl.cli import main

MISSING_RUN = "no-such-run"  # a run directory that does not exist: the option is refused first

CASES = [
    # eval
    (["eval", "oracle", "--balls", "0"], "--balls"),
    (["eval", "oracle", "--balls", "100000"], "--balls"),
    (["eval", "oracle", "--drift", "-1"], "--drift"),
    (["eval", "oracle", "--drift", "1000"], "--drift"),
    (["eval", "oracle", "--obs-type", "grid", "--drift", "3"], "--drift"),
    (["eval", "oracle", "--seed", "-1"], "--seed"),
    (["eval", "oracle", "--games", "1000000000000"], "--games"),
    (["train", "--set", "run.eval_games=100000000000"], "run.eval_games"),
    (["eval", "oracle", "--seed", "99999999999999999999"], "--seed"),
    (["eval", "oracle", "--games", "0"], "--games"),
    (["eval", "oracle", "--games", "-5"], "--games"),
    (["eval", MISSING_RUN, "--seed", "-1"], "--seed"),
    # watch
    (["watch", MISSING_RUN, "--fps", "-5"], "--fps"),
    (["watch", "oracle", "--fps", "-5", "--gif", "w.gif"], "--fps"),
    (["watch", "oracle", "--games", "0"], "--games"),
    (["watch", "oracle", "--seed", "-1"], "--seed"),
    (["watch", "oracle", "--balls", "0"], "--balls"),
    (["watch", "oracle", "--drift", "-3"], "--drift"),
    # play
    (["play", "--fps", "-1"], "--fps"),
    (["play", "--seed", "-1"], "--seed"),
    (["play", "--balls", "0"], "--balls"),
    (["play", "--drift", "500"], "--drift"),
    (["play", "--linger", "-2"], "--linger"),
    (["play", "--linger", "nan"], "--linger"),
    # plot
    (["plot", MISSING_RUN, "--window", "0"], "--window"),
    (["plot", MISSING_RUN, "--window", "-100"], "--window"),
    # bench
    (["bench", "env", "--seconds", "0"], "--seconds"),
    (["bench", "env", "--seconds", "nan"], "--seconds"),
    (["bench", "env", "--batch-sizes", "64", "0"], "--batch-sizes"),
    (["bench", "env", "--batch-sizes", "100000"], "--batch-sizes"),
    (["bench", "agents", "--seeds", "0", "-1"], "--seeds"),
    (["bench", "agents", "--pixel-steps", "0"], "--pixel-steps"),
    (["bench", "agents", "--state-steps", "-1"], "--state-steps"),
    (["bench", "agents", "--eval-every", "0"], "--eval-every"),
    (["bench", "agents", "--eval-games", "0"], "--eval-games"),
    (["bench", "agents", "--target", "1.5"], "--target"),
    (["bench", "agents", "--set", "env.num_envs=16"], "expected AGENT:KEY=VALUE"),
    (["bench", "agents", "--agents", "sb3-dqn", "--set", "sb3-ppo:run.seed=1"], "not in --agents"),
    (["bench", "agents", "--set", "sb3-dqn:env.num_envs=0"], "env.num_envs: must be in"),
    (["bench", "modules", "--drift", "-1"], "--drift"),
    (["bench", "modules", "--drift", "1000"], "--drift"),
    (["bench", "modules", "--steps", "0"], "--steps"),
    (["bench", "modules", "--seeds", "99999999999"], "--seeds"),
    # data
    (["data", "make", "--out", "d.npz", "--games", "0"], "--games"),
    (["data", "make", "--out", "d.npz", "--seed", "-1"], "--seed"),
    (["data", "make", "--out", "d.npz", "--drift", "-1"], "--drift"),
    (["data", "make", "--out", "d.npz", "--drift", "1000"], "--drift"),
    (["data", "make", "--out", "d.npz", "--balls", "0"], "--balls"),
    (["data", "make", "--out", "d.npz", "--num-envs", "0"], "--num-envs"),
    (["data", "make", "--out", "d.npz", "--random-prob", "0.5", "0.2"], "--random-prob"),
    (["data", "make", "--out", "d.npz", "--random-prob", "-1", "0.5"], "--random-prob"),
    # the config's ranges (train --set): a ConfigError, before the run directory exists
    (["train", "--run-dir", "r", "--set", "env.drift=1000"], "env.drift"),
    (["train", "--run-dir", "r", "--set", "run.seed=99999999999999999999"], "run.seed"),
    (["train", "--run-dir", "r", "--set", "agent.n_step=100000"], "agent.n_step"),
    (["train", "--run-dir", "r", "--set", "env.num_envs=0"], "env.num_envs"),
    (["train", "--run-dir", "r", "--set", "agent.replay_capacity=-1"], "agent.replay_capacity"),
]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("argv", "option"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_number_is_one_line_naming_the_option(argv, option, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*argv)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"catchrl {argv[0]}") and ": error: " in lines[0], err
    assert option in lines[0] and "Traceback" not in err, err
    assert out == ""
    assert _files(tmp_path) == []  # nothing written


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["eval", "oracle", "--drift", "-1"], "--drift"),
        (["watch", MISSING_RUN, "--fps", "-5"], "--fps"),
    ],
)
def test_bad_number_from_a_fresh_process(argv, option, tmp_path, catchrl_process):
    proc = catchrl_process(*argv, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and option in proc.stderr, proc.stderr
    assert _files(tmp_path) == []


def test_good_numbers_at_the_bounds_still_run(tmp_path, monkeypatch, cli):
    """The checks are not too strict: the largest drift and seed are played."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("eval", "oracle", "--games", "3", "--drift", "190", "--seed", 2**32 - 1)
    assert code == 0 and "win rate" in out


def test_bench_agents_hands_each_contender_its_own_overrides(monkeypatch, tmp_path):
    seen = {}

    def race(args, contenders, steps, overrides):
        seen.update(overrides)
        return 0

    monkeypatch.setattr("catchrl.commands.bench._run_race", race)
    argv = ["bench", "agents", "--agents", "catchrl-dqn", "sb3-dqn", "--out", str(tmp_path)]
    argv += ["--set", "sb3-dqn:env.num_envs=16", "--set", "sb3-dqn:agent.lr=0.001"]
    assert main(argv) == 0
    assert seen == {"sb3-dqn": ["env.num_envs=16", "agent.lr=0.001"]}


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["evl", "oracle"], "did you mean 'eval'?"),
        (["eval", "oracle", "--gmes", "3"], "did you mean '--games'?"),
        (["train", "--algo", "sb3-ppp", "--print-config"], "did you mean 'sb3-ppo'?"),
    ],
)
def test_a_typo_is_one_line_with_the_closest_name(argv, suggestion, cli):
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and suggestion in err, err


class _Payload:
    """Touches ``pwned`` next to the model file if unpickled."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __reduce__(self):
        return (Path.touch, (self.folder / "pwned",))


def _npz_member(z: zipfile.ZipFile, name: str, shape: tuple, dtype: str, data: bytes | int) -> None:
    """``name.npy`` declaring ``shape``/``dtype``, holding ``data`` (or that many zero bytes)."""
    with z.open(f"{name}.npy", "w", force_zip64=True) as f:
        header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        for _ in range(data // (1 << 22) if isinstance(data, int) else 0):
            f.write(bytes(1 << 22))
        f.write(b"" if isinstance(data, int) else data)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("400 MB packed small", "its arrays declare 419,430,400 bytes"),
        ("a header that lies", "declares float32 (1000000000,)"),
        ("a pickle", "object array"),
    ],
)
def test_a_bad_model_npz_is_one_line_naming_the_file(tmp_path, monkeypatch, cli, fault, message):
    """``catchrl eval X.npz`` (an RLlib model file): sizes and dtypes checked before reading."""
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile("model.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        if fault == "400 MB packed small":
            _npz_member(z, "w", (400 << 20,), "u1", 400 << 20)
        elif fault == "a header that lies":
            _npz_member(z, "w", (10**9,), "<f4", b"\x00" * 4)
        else:
            _npz_member(z, "w", (1,), "O", pickle.dumps(_Payload(tmp_path)))
    assert Path("model.npz").stat().st_size < 4_000_000
    code, out, err = cli("eval", "model.npz", "--games", "3")
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("catchrl eval: error: model.npz: ") and message in err, err
    assert _files(tmp_path) == ["model.npz"]  # nothing written, the pickle never ran


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else ""
        for p in sorted(folder.rglob("*"))
    }


def _deep_toml(folder: Path) -> None:
    (folder / "deep.toml").write_text("[agent]\nx = " + "[" * 5000 + "]" * 5000 + "\n")


def _spoilt_study(folder: Path) -> None:
    """A study folder whose study.toml is a config but not a study's (its [sweep] is no table)."""
    from catchrl.api import make_config
    from catchrl.config import to_toml

    (folder / "study").mkdir()
    (folder / "study" / "study.toml").write_text(to_toml(make_config("fast-state")) + "sweep = 3\n")


def _a_file(folder: Path) -> None:
    (folder / "afile").write_text("not a folder\n")


def _nothing(folder: Path) -> None:
    pass


LONG = "a" * 100_000
FILE_CASES = [
    (_nothing, ["train", "--run-dir", "a" * 300], "File name too long"),
    (_nothing, ["train", "--run-dir", "/proc/catchrl-run"], "cannot create run directory"),
    (_a_file, ["train", "--run-dir", "afile/run"], "cannot create run directory 'afile/run'"),
    (
        _nothing,
        ["train", "--run-dir", "r", "--set", f"agent.module=tuned-encoder:{LONG}"],
        "agent.module",
    ),
    (
        _deep_toml,
        ["train", "--run-dir", "r", "--config", "deep.toml"],
        "deep.toml: nested too deep",
    ),
    (_deep_toml, ["train", "--run-dir", "r", "--set", "agent.lr=" + "[" * 5000], "agent.lr"),
    (_spoilt_study, ["sweep", "--resume", "study"], "study/study.toml: [sweep] must be a table"),
]


@pytest.mark.parametrize(
    ("make", "argv", "message"), FILE_CASES, ids=[" ".join(a)[:60] for _, a, _ in FILE_CASES]
)
def test_a_bad_file_or_folder_is_one_line_and_changes_nothing(
    make, argv, message, tmp_path, monkeypatch, cli
):
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    before = _hashes(tmp_path)
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err[-2000:]
    assert err.startswith(f"catchrl {argv[0]}: error: ") and message in err, err[:500]
    assert _hashes(tmp_path) == before
