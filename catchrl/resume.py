"""Opening a run: the config it trains and the checkpoint it continues from (``--resume``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_run_config,
)
from catchrl.errors import CheckpointError, RunDirError
from catchrl.rundir import RunDir, read_text

__all__ = ["RESUMABLE", "Opened", "check_memory", "open_config"]

RESUMABLE = (
    "run.total_steps=",
    "run.total_games=",
    "run.time_limit_s=",
    "run.eval_every=",
    "run.eval_games=",
    "run.checkpoint_every=",
    "run.target_win_rate=",
)
"""The settings a resumed run may change (its budget and bookkeeping); the rest is fixed."""
Opened = tuple[
    TrainConfig, Path | None, tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]] | None
]


def open_config(
    rd: RunDir, cfg: TrainConfig | None, resume: bool, overrides: Sequence[str]
) -> Opened:
    """The config to train, the checkpoint folder and its contents (None: a fresh start).

    Raises:
        RunDirError: A fresh run in a folder holding one, or an override ``--resume``
            may not change.
        CheckpointError: Nothing to resume, or a checkpoint for another setup.

    """
    if not resume:
        if cfg is None:
            raise ValueError("a run needs a config unless it resumes")
        rd.check_fresh()
        return cfg, None, None
    for text in overrides:
        if not text.startswith(RESUMABLE):
            raise RunDirError(
                f"--resume keeps the run's config; only {', '.join(RESUMABLE)} "
                f"may change, not {text.split('=')[0]!r}"
            )
    run_cfg = None
    if rd.config_path.is_file():
        read_text(rd.config_path)  # a clear error if it is not UTF-8
        run_cfg = load_run_config(rd.config_path)
    checkpoint = rd.latest_checkpoint()
    if checkpoint is None:
        if run_cfg is None:
            raise CheckpointError(
                f"--resume: no checkpoint and no config.toml in {str(rd.path)!r}: "
                "it holds no catchrl run"
            )
        # Stopped before its first checkpoint (kill -9): start it again from its config.
        return apply_overrides(run_cfg, list(overrides)), None, None
    arrays, state = RunDir.load_checkpoint(checkpoint)
    try:
        ckpt_cfg = config_from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {checkpoint}: bad config ({e})") from e
    if run_cfg is not None:
        _check_same_setup(rd, checkpoint, run_cfg, ckpt_cfg)
    return apply_overrides(ckpt_cfg, list(overrides)), checkpoint, (arrays, state)


def _check_same_setup(
    rd: RunDir, checkpoint: Path, run_cfg: TrainConfig, ckpt_cfg: TrainConfig
) -> None:
    """Refuse a checkpoint made for another game or agent than the run's config.toml."""
    ours, theirs = config_to_dict(run_cfg), config_to_dict(ckpt_cfg)
    if ours.get("algo", "dqn") != theirs.get("algo", "dqn"):
        raise CheckpointError(
            f"checkpoint {checkpoint} was made by --algo {theirs.get('algo', 'dqn')}, "
            f"but {rd.config_path} says {ours.get('algo', 'dqn')}"
        )
    for table in ("env", "agent", "sb3", "rllib"):
        a, b = ours.get(table, {}), theirs.get(table, {})
        diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if diff:
            k = diff[0]
            raise CheckpointError(
                f"checkpoint {checkpoint} was made for another setup: {table}.{k} "
                f"is {b.get(k)!r} there but {a.get(k)!r} in {rd.config_path}"
            )


def check_memory(cfg: TrainConfig, need: int) -> None:
    """Refuse, before allocating, a configuration needing more than the machine has free."""
    from catchrl.envs import available_memory_bytes

    have = available_memory_bytes()
    if need > have:
        raise ConfigError(
            f"this configuration needs ~{need / 2**30:.1f} GiB of memory (env "
            f"num_envs={cfg.env.num_envs}, frame_size={cfg.env.frame_size}, "
            f"agent.replay_capacity={cfg.agent.replay_capacity}), more than the "
            f"{have / 2**30:.1f} GiB available"
        )
