"""Opening a run: the config it trains, the checkpoint ``--resume`` continues, the memory check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from catchrl.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_run_config,
)
from catchrl.errors import CheckpointError, RunDirError
from catchrl.rundir import RunDir

RESUMABLE = ("run.total_steps=", "run.eval_every=", "run.eval_games=", "run.target_win_rate=")
"""The settings a resumed run may change (its budget and bookkeeping); the rest is fixed."""


def open_config(
    rd: RunDir, cfg: TrainConfig | None, resume: bool, overrides: Sequence[str]
) -> tuple[TrainConfig, Path | None, tuple[dict[str, Any], dict[str, Any]] | None]:
    """The config to train, the latest checkpoint and its ``(arrays, state)`` (None: fresh)."""
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
    run_cfg = load_run_config(rd.config_path) if rd.config_path.is_file() else None
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
        _check_same_setup(config_to_dict(run_cfg), config_to_dict(ckpt_cfg), checkpoint, rd)
    return apply_overrides(ckpt_cfg, list(overrides)), checkpoint, (arrays, state)


def _check_same_setup(ours: dict, theirs: dict, checkpoint: Path, rd: RunDir) -> None:
    """Refuse a checkpoint made for another algorithm, game or agent than config.toml's."""
    differ = [("algo", theirs.get("algo"), ours.get("algo"))]
    for table in ("env", "agent", "sb3", "rllib"):
        a, b = ours.get(table, {}), theirs.get(table, {})
        differ += [(f"{table}.{key}", b.get(key), a.get(key)) for key in sorted(set(a) | set(b))]
    for key, there, here in differ:
        if there != here:
            raise CheckpointError(
                f"checkpoint {checkpoint} was made for another setup: {key} is {there!r} "
                f"there but {here!r} in {rd.config_path}"
            )


def check_memory(cfg: TrainConfig, need: int) -> None:
    """Refuse, before allocating, a configuration needing more memory than is free."""
    from catchrl.envs.sizing import check_fits

    setting = f"env.num_envs={cfg.env.num_envs}, env.frame_size={cfg.env.frame_size}, "
    setting += f"agent.replay_capacity={cfg.agent.replay_capacity}"
    try:
        check_fits(f"this configuration ({setting})", need, "agent.replay_capacity or env.num_envs")
    except ValueError as e:
        raise ConfigError(str(e)) from None
