"""The race (``bench agents``, ``bench modules``): each a ``catchrl train`` in a new process."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from catchrl.config import PRESETS, load_config
from catchrl.learners import LEARNERS
from catchrl.stats import read_run
from catchrl.training import MLP_UNITS

AGENTS = ("catchrl-dqn", "sb3-dqn", "sb3-dqn-like", "sb3-ppo")
"""The default race: catchrl's DQN, SB3's DQN as shipped and like for like, SB3's PPO."""
OTHER_ALGOS = [algo for algo in LEARNERS if algo != "dqn"]
"""The learners that race under their own name (catchrl's DQN races as catchrl-dqn)."""
PRESET = {"pixels": "fast", "state": "fast-state", "grid": "fast-state"}
"""The preset of each observation type (its ``[env]`` table is SB3's game too)."""
MODULE_CONTENDERS = ("catchrl-dqn", "dqn-perceived", "dqn-encoder-frozen", "dqn-encoder", "dqn-aux")
"""``bench modules``: the pixel DQN (``fast``), and with each supervised module."""
PERCEPTION_MODULES = {
    "dqn-perceived": "perception",
    "dqn-encoder-frozen": "encoder",
    "dqn-encoder": "tuned-encoder",
}
"""The contenders built on a perception model (``--perception``): their ``agent.module``."""


def module_overrides(contender: str, perception: str = "") -> list[str]:
    """A contender's ``fast`` overrides; on a frozen perception model, ``fast-state``'s agent."""
    if contender == "catchrl-dqn":
        return []
    if contender == "dqn-aux":
        return ['agent.module="landing-head"']
    overrides = [f"agent.module={json.dumps(f'{PERCEPTION_MODULES[contender]}:{perception}')}"]
    if contender == "dqn-encoder":  # fine-tuned inside the pixel DQN
        return overrides
    state = PRESETS["fast-state"]
    overrides += [f"agent.{key}={json.dumps(value)}" for key, value in state["agent"].items()]
    return overrides


def like_for_like(obs_type: str) -> list[str]:
    """SB3's DQN with the preset's network, n-step returns and replay ratio on ``obs_type``."""
    agent = load_config(PRESET[obs_type]).agent
    tiny = '{features_extractor_class="tiny", net_arch=[]}'
    network = {"tiny": tiny, "mlp": f"{{net_arch={list(MLP_UNITS)}}}"}[agent.network]
    return [
        f"sb3.policy_kwargs={network}",
        f"sb3.n_steps={agent.n_step}",
        "sb3.train_freq=1",
        f"sb3.gradient_steps={agent.gradient_steps}",
        f"sb3.batch_size={agent.batch_size}",
    ]


def race_settings(contender: str, obs_type: str, overrides: Sequence[str] = ()) -> tuple[str, list]:
    """A contender's ``--algo`` and its ``--set`` overrides, on top of :data:`PRESET`."""
    sb3_or_rllib = contender.startswith(("sb3-", "rllib-"))
    algo = contender.removesuffix("-like") if sb3_or_rllib else "dqn"  # bench modules: dqn-*
    own = like_for_like(obs_type) if contender == "sb3-dqn-like" else []
    game = ['env.obs_type="grid"', "agent.n_step=8"] if obs_type == "grid" else []
    return algo, [*game, *own, *overrides]


def run_race(
    contenders: Sequence[str],
    steps: dict[str, int],
    seeds: Sequence[int],
    out_dir: Path,
    settings: Sequence[str] = (),
    overrides: dict[str, list[str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Train every (contender, obs type in ``steps``, seed) under ``out_dir``; the finished runs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[dict[str, Any]]] = {}
    for (obs, total), seed, contender in itertools.product(steps.items(), seeds, contenders):
        name = f"{contender}-{obs}-s{seed}"
        run_dir = out_dir / name
        shutil.rmtree(run_dir, ignore_errors=True)  # the race's own folder, rerun
        budget = [f"run.seed={seed}", f"run.total_steps={total}", *settings]
        algo, sets = race_settings(contender, obs, [*budget, *(overrides or {}).get(contender, [])])
        command = [sys.executable, "-m", "catchrl", "train", "--algo", algo]
        command += ["--preset", PRESET[obs], "--run-dir", str(run_dir), "--no-progress"]
        command += [word for s in sets for word in ("--set", s)]
        with open(out_dir / f"{name}.log", "w") as output:
            # PYTHONSAFEPATH (Python 3.11+): the working directory is not put on sys.path,
            # so a folder there named catchrl does not hide the package
            env = os.environ | {"PYTHONSAFEPATH": "1"}
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(process.pid, 0)  # the child's own peak memory
            process.returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss / 1024  # KiB on Linux
        if process.returncode != 0 or not (run_dir / "eval.json").is_file():
            print(f"{name}: FAILED ({process.returncode}), see {output.name}", file=sys.stderr)
            continue
        run = read_run(run_dir) | {"peak_rss_mib": peak}
        groups.setdefault(f"{contender} ({obs})", []).append(run)
        test = f"test {100 * run['test_win_rate']:.1f} % ({run['model']})"
        print(f"{name}: {run['steps']} steps, {test}, {peak:.0f} MiB", file=sys.stderr, flush=True)
    return groups
