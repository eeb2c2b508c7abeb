"""Shared test setup: headless SDL, quiet TensorFlow, and the fixtures most tests need.

- ``cli``: run ``catchrl ARGS`` in-process: ``cli("eval", "oracle") -> (code, stdout, stderr)``.
- ``catchrl_process``: the same in a fresh interpreter (``python -m catchrl``), for what
  only a new process shows (signals, imports, log lines); returns a ``CompletedProcess``.
- ``quick_run``: one Keras DQN run directory, trained once per session by ``catchrl
  train`` (:data:`QUICK_TRAIN`: 1,000 steps of ``fast-state`` with evaluations).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

QUICK_TRAIN = (
    "train",
    "--preset",
    "fast-state",
    "--steps",
    "1000",
    "--no-progress",
    "--set",
    "run.eval_every=10",
    "--set",
    "run.eval_games=50",
)
"""``catchrl train`` arguments of a quick run: about 30 games of the state game."""


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``catchrl ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from catchrl.cli import main

    def run(*argv: str | os.PathLike[str]) -> tuple[int, str, str]:
        capsys.readouterr()  # what came before is not this call's
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def run_catchrl(
    *argv: str | os.PathLike[str], timeout: float = 300, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """``python -m catchrl ARGS`` in a fresh interpreter (``kwargs`` go to ``subprocess.run``)."""
    cmd = [sys.executable, "-m", "catchrl", *map(str, argv)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def catchrl_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    """:func:`run_catchrl`."""
    return run_catchrl


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory trained once by ``catchrl train`` (:data:`QUICK_TRAIN`)."""
    from catchrl.cli import main

    run_dir = tmp_path_factory.mktemp("quick") / "run"
    assert main([*QUICK_TRAIN, "--run-dir", str(run_dir)]) == 0
    return run_dir
