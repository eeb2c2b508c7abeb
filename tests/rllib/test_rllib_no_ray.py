"""`catchrl train` with another learner (SB3) never imports Ray.

Meaningful where Ray is installed (`.[all]`): the check runs in a fresh interpreter
and reads its ``sys.modules``. Light imports in general: tests/test_imports.py.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

if importlib.util.find_spec("ray") is None:
    pytest.skip("Ray is not installed here: nothing to keep out", allow_module_level=True)


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(proc.stdout.split())


def _ray(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == "ray" or m.startswith("ray."))


def test_catchrl_train_with_another_learner_never_imports_ray(tmp_path):
    pytest.importorskip("stable_baselines3")
    run = tmp_path / "run"
    modules = _modules_after(
        "from catchrl.cli import main\n"
        f"assert main(['train', '--algo', 'sb3-ppo', '--preset', 'fast-state', '--steps', "
        f"'600', '--run-dir', {str(run)!r}, '--no-progress', '--set', 'run.eval_games=20', "
        "'--set', 'run.eval_every=16']) == 0"
    )
    assert (run / "model.zip").is_file()  # it trained
    assert "catchrl.runloop" in modules
    assert _ray(modules) == []
