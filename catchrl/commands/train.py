"""``catchrl train``: train an agent into a run directory (``--resume`` continues it)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from catchrl.cli import UserError

if TYPE_CHECKING:
    from catchrl.config import TrainConfig

EPILOG = """examples:
  catchrl train                                  # fast preset, pixels, runs/dqn-pixels-<time>
  catchrl train --preset fast-state --run-dir runs/state
  catchrl train --preset book --run-dir runs/book   # the book's run, faithfully
  catchrl train --config my.toml --set agent.lr=5e-4 --set run.total_steps=80000
  catchrl train --run-dir runs/state --resume       # continue a stopped run exactly
  catchrl train --print-config --preset book        # show every setting, as TOML

Config tables and keys: see `catchrl train --print-config`; each key is documented
in catchrl/config.py. Ctrl-C finishes the games in flight, writes a checkpoint and
exits; `--resume` continues from it.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl train``."""
    p = sub.add_parser(
        "train",
        help="train an agent (Keras DQN; SB3 with --algo)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--algo",
        default="dqn",
        help="dqn (catchrl's Keras DQN, default) or an SB3 agent: sb3-dqn, "
        "sb3-ppo, sb3-a2c, sb3-qrdqn",
    )
    p.add_argument(
        "--preset", default=None, help="starting config: fast (default, pixels), fast-state, book"
    )
    p.add_argument("--config", type=Path, help="TOML file with [env], [agent], [run] tables")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override one setting (repeatable)",
    )
    p.add_argument("--run-dir", type=Path, help="where to write the run (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--seed", type=int, help="shortcut for --set run.seed=N")
    p.add_argument("--steps", type=int, help="shortcut for --set run.total_steps=N")
    p.add_argument("--no-progress", action="store_true", help="plain log lines, no bar")
    p.add_argument("--print-config", action="store_true", help="print the config and exit")
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Build the config from preset, file and overrides (shared with the SB3 trainer)."""
    from catchrl.config import ConfigError, load_config

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    if args.steps is not None:
        overrides += [f"run.total_steps={args.steps}", "run.total_games=0"]
    try:
        return load_config(args.preset or "fast", args.config, overrides)
    except ConfigError as e:
        raise UserError(str(e)) from e


def default_run_dir(algo: str, obs_type: str) -> Path:
    """``runs/<algo>-<obs>-<YYYYmmdd-HHMMSS>``."""
    return Path("runs") / f"{algo}-{obs_type}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(args: argparse.Namespace) -> int:
    """Train; print where the run went and its final evaluation."""
    if args.resume and args.run_dir is not None and args.algo == "dqn":
        args.algo = _saved_algo(args.run_dir)  # resume with the run's own trainer
    if args.algo != "dqn":
        try:
            from catchrl.sb3_train import run_sb3
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith(("stable_baselines3", "torch", "catchrl.sb3")):
                raise UserError(
                    f"--algo {args.algo} needs Stable-Baselines3: pip install 'catchrl[sb3]'"
                ) from e
            raise
        return run_sb3(args)
    if args.resume:
        return _resume(args)
    cfg = resolve_config(args)
    if args.print_config:
        from catchrl.config import to_toml

        print(to_toml(cfg), end="")
        return 0
    run_dir = args.run_dir or default_run_dir("dqn", cfg.env.obs_type)
    return _train(args, cfg, run_dir)


def _saved_algo(run_dir: Path) -> str:
    """The ``algo`` in a run directory's config.toml (``dqn`` if it has none)."""
    import tomllib

    path = Path(run_dir) / "config.toml"
    try:
        return str(tomllib.loads(path.read_text()).get("algo", "dqn")) if path.is_file() else "dqn"
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML: {e}") from e


def _resume(args: argparse.Namespace) -> int:
    if args.run_dir is None:
        raise UserError("--resume needs --run-dir")
    if args.preset or args.config:
        raise UserError(
            "--resume continues the run with its saved config; drop "
            "--preset/--config (only --steps and --set run.* may change)"
        )
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"run.total_steps={args.steps}")
    return _train(args, None, args.run_dir, overrides)


def _train(
    args: argparse.Namespace,
    cfg: TrainConfig | None,
    run_dir: Path,
    resume_overrides: list[str] | None = None,
) -> int:
    from catchrl.config import ConfigError
    from catchrl.rundir import CheckpointError
    from catchrl.training import Trainer

    try:
        trainer = Trainer(
            cfg,
            run_dir,
            resume=args.resume,
            progress=False if args.no_progress else None,
            resume_overrides=resume_overrides or (),
        )
        result = trainer.run()
    except (CheckpointError, ConfigError) as e:
        raise UserError(str(e)) from e
    print(f"run directory: {run_dir}")
    print(f"trained {result.games} games, {result.steps} env steps, {result.wall_time:.1f} s")
    if result.interrupted:
        print(f"interrupted: resume with `catchrl train --run-dir {run_dir} --resume`")
        return 130
    if result.final_eval is not None:
        print(f"greedy evaluation: {result.final_eval.summary()}")
    return 0
