"""The README as a user follows it: every ``catchrl`` line parses, the Python block runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from catchrl.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _catchrl_lines() -> list[list[str]]:
    """The arguments of every ``catchrl`` command in the README's shell blocks."""
    commands = []
    for block in _blocks("bash") + _blocks("sh"):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                starts = [i for i, w in enumerate(words) if w.split("/")[-1] == "catchrl"]
                if starts and "..." not in words:
                    commands.append(words[starts[0] + 1 :])
    return commands


def test_the_readme_has_command_lines_to_check() -> None:
    commands = _catchrl_lines()
    assert len(commands) >= 20
    assert ["train", "--run-dir", "runs/quickstart"] in commands


@pytest.mark.parametrize("args", _catchrl_lines(), ids=" ".join)
def test_every_readme_command_line_parses(args: list[str]) -> None:
    parser = build_parser()
    try:
        parsed, extra = parser.parse_known_args(args)
    except SystemExit as e:  # argparse's one-line error (exit 2)
        pytest.fail(f"catchrl {' '.join(args)}: argparse exited {e.code}")
    assert not extra, f"catchrl {' '.join(args)}: unrecognized {extra}"
    assert getattr(parsed, "func", None), f"catchrl {' '.join(args)}: no command"


SMALL_BUDGET = """
import catchrl

_train = catchrl.train


def _small(*args, overrides=(), **kwargs):
    return _train(*args, overrides=[*overrides, "run.total_steps=1500"], **kwargs)


catchrl.train = _small
"""


def test_the_readme_python_block_runs(tmp_path: Path) -> None:
    (block,) = [b for b in _blocks("python") if "catchrl.train(" in b]
    script = tmp_path / "readme.py"
    script.write_text(SMALL_BUDGET + block, encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "win rate" in done.stdout
    assert (tmp_path / "runs" / "state" / "best.keras").is_file()
    assert (tmp_path / "games.mp4").stat().st_size > 1000
