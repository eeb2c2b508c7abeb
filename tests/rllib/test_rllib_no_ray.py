"""`import catchrl` and `catchrl train` without --algo rllib-* never import Ray.

Meaningful where Ray is installed (the RLlib virtualenv, .ci/run-rllib): each check
runs in a fresh interpreter and reads its ``sys.modules``.
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


def test_import_catchrl_and_its_app_modules_never_import_ray():
    # one interpreter: the modules, then `catchrl train --print-config` (the DQN's config)
    modules = _modules_after(
        "import catchrl, catchrl.envs, catchrl.agents.policy, catchrl.config, "
        "catchrl.learners, catchrl.policies, catchrl.runloop, catchrl.cli, "
        "catchrl.commands.train, catchrl.commands.bench, catchrl.evaluation, "
        "catchrl.agents.rllib_algos, catchrl.rllib_train\n"
        "from catchrl.cli import main\n"
        "assert main(['train', '--preset', 'fast-state', '--print-config']) == 0"
    )
    assert "catchrl.learners" in modules  # the probe ran
    assert _ray(modules) == []


def test_catchrl_train_with_another_learner_never_imports_ray(tmp_path):
    pytest.importorskip("stable_baselines3")  # the RLlib virtualenv has SB3, not Keras
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


def test_the_probe_sees_ray_when_it_is_imported():
    assert "ray" in _ray(_modules_after("import ray"))  # the check above can fail
