"""The README as a user follows it: every ``catchrl`` line parses, the Python block runs, and
(with the fault tests) its shell blocks run top to bottom in a fresh shell, on small budgets."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
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


def test_the_readme_python_block_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    """The training block as written, run in this process on a small budget (1,500 steps)."""
    import catchrl

    (block,) = [b for b in _blocks("python") if "catchrl.train(" in b]
    train = catchrl.train

    def small(*args, overrides=(), **kwargs):
        return train(*args, overrides=[*overrides, "run.total_steps=1500"], **kwargs)

    monkeypatch.setattr(catchrl, "train", small)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(README), "exec"), {"__name__": "__main__"})
    assert "win rate" in capsys.readouterr().out
    assert (tmp_path / "runs" / "state" / "best.keras").is_file()
    assert (tmp_path / "games.mp4").stat().st_size > 1000


# -- the README top to bottom, in a fresh shell --------------------------------------------

TEST = "--set run.eval_games=20"  # a train line's evaluations: 20 games, not 1,000
SHORT = f"--steps 300 {TEST}"  # a DQN run: no gradient step (observe 1,000+)
SMALL = {  # a README command (its comment dropped) -> what the test appends: small budgets
    # pixels, 16 games at once: 1,200 steps are about 36 games (plot needs games)
    ".venv/bin/catchrl train --run-dir runs/quickstart": f"--steps 1200 {TEST}",
    ".venv/bin/catchrl eval runs/quickstart": "--games 100",
    "catchrl play": "--balls 1 --fps 0 --linger 0",  # the keyboard game: no keys, one ball
    "catchrl play --policy oracle --balls 10": "--balls 2 --fps 0 --linger 0",
    "catchrl train": f"--steps 400 {TEST}",
    "catchrl train --preset fast-state": f"--steps 400 {TEST}",
    "catchrl train --preset book --run-dir runs/book": SHORT,
    "catchrl train --run-dir runs/book --resume": "--steps 600",
    "catchrl eval runs/quickstart --games 1000": "--games 50",
    "catchrl watch runs/quickstart": "--games 1 --fps 0",
    "catchrl watch runs/quickstart --video agent.mp4": "--games 1",
    "catchrl bench env": "--seconds 0.05",
    "catchrl sweep --preset fast-state --seeds 3": "--seeds 1 --steps 300 --set run.eval_games=10",
    "catchrl train --algo sb3-ppo --run-dir runs/sb3": f"--steps 600 {TEST}",
    "catchrl data make --kind frames --games 400 --seed 0 --out frames.npz": "--games 30",
    "catchrl supervised train perception --data frames.npz --run-dir runs/perception": "--epochs 1",
    "catchrl train --preset fast-state --set env.obs_type='pixels' --set agent.module='perception:runs/perception'": SHORT,  # noqa: E501
    "catchrl train --preset fast-state --set env.obs_type='pixels' --set agent.module='encoder:runs/perception'": SHORT,  # noqa: E501
    "catchrl train --set agent.module='tuned-encoder:runs/perception'": SHORT,
    "catchrl train --set agent.module='landing-head'": SHORT,
    "catchrl bench modules --perception runs/perception": "--steps 300 --seeds 100 --eval-games 10",
    ".venv/bin/catchrl train --algo rllib-ppo --preset fast-state": f"--steps 400 {TEST}",
}

INSTALL = ("python3 -m venv .venv", ".venv/bin/pip install")
"""Left out: the suite runs in that virtualenv, linked into the copy (.ci/run made it so)."""


def _readme_script() -> tuple[str, set[str]]:
    """The README's shell blocks as one script; each command stops it if it fails.

    The test block is left out: it is CI's own command (.ci/run), and this test is in it.
    """
    lines, used = [], set()
    for number, block in enumerate(_blocks("bash")):
        if number == 2:  # after the two set-up blocks, as the README says
            lines.append("source .venv/bin/activate")
        if "pytest" in block:
            continue
        for line in block.splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            for part in [] if command.startswith("#") else command.split(" && "):
                if not part or part.startswith(INSTALL):
                    continue
                used.add(part)
                run = f"{part} {SMALL.get(part, '')}".strip()
                failed = shlex.quote(f"README line failed: {part}")
                lines.append(f'echo "[$SECONDS s]" {shlex.quote("$ " + run)}')
                lines.append(f"{run} || {{ echo {failed} >&2; exit 1; }}")
    return "\n".join(lines) + "\n", used


def test_the_readme_says_to_activate_and_ci_runs_its_test_line() -> None:
    text = README.read_text(encoding="utf-8")
    assert "`source .venv/bin/activate`" in text
    (test_line,) = [b.strip() for b in _blocks("bash") if "pytest" in b]
    assert test_line in (README.parent / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.faults  # ~3.5 CPU-minutes (19 min wall on a loaded 2-core machine)
@pytest.mark.timeout(2400)
def test_the_readme_top_to_bottom_in_a_fresh_shell(tmp_path: Path) -> None:
    root = README.parent
    script, used = _readme_script()
    assert set(SMALL) <= used, f"not in the README any more: {set(SMALL) - used}"
    copy = tmp_path / "catchrl"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (root / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, copy / name)
    (copy / ".venv").symlink_to(root / ".venv")
    (tmp_path / "readme.sh").write_text(script, encoding="utf-8")
    env = [
        f"HOME={os.environ['HOME']}",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "SDL_VIDEODRIVER=dummy",  # a server without a display
        "SDL_AUDIODRIVER=dummy",
        "CUDA_VISIBLE_DEVICES=",
    ]
    done = subprocess.run(
        ["env", "-i", *env, "bash", "--noprofile", "--norc", str(tmp_path / "readme.sh")],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    for made in ["runs/quickstart/model.keras", "agent.mp4", "both.png", "runs/perception"]:
        assert (copy / made).exists(), made
