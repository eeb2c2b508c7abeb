"""'catchrl train': train an agent into a run directory ('--resume' continues it)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from catchrl.commands import options
from catchrl.config import to_toml
from catchrl.errors import UserError, first_line
from catchrl.learners import LEARNERS, open_run

EPILOG = """examples:
  catchrl train                                  # fast preset, pixels, runs/dqn-pixels-<time>
  catchrl train --preset book --run-dir runs/book   # the book's run, faithfully
  catchrl train --config my.toml --set agent.lr=5e-4 --set run.total_steps=80000
  catchrl train --print-config --preset book        # show every setting, as TOML

Config keys: catchrl/config.py. Ctrl-C, SIGTERM or SIGHUP stop the run with a checkpoint
(exit code 128 + the signal); --resume continues it exactly.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl train``."""
    shared = [options.config(), options.run_dir(default="runs/<algo>-<obs>-<time>")]
    help = "train an agent (Keras DQN; SB3 or RLlib with --algo)"
    p = options.add_command(sub, "train", help, __doc__, EPILOG, [*shared, options.trust()], run)
    help = f"{', '.join(LEARNERS)} (default: the config's, dqn: catchrl's Keras DQN; "
    help += "rllib-*: pip install 'catchrl[rllib]')"
    p.add_argument("--algo", choices=LEARNERS, metavar="ALGO", help=help)
    keep, help = options.number(1), "complete checkpoints kept (default 1: the latest)"
    p.add_argument("--keep-checkpoints", type=keep, default=1, metavar="N", help=help)
    p.add_argument("--seed", type=options.SEED, help="shortcut for --set run.seed=N")
    p.add_argument("--steps", type=options.number(1), help="shortcut for --set run.total_steps=N")
    p.add_argument("--no-progress", action="store_true", help="plain log lines, no bar")
    p.add_argument("--print-config", action="store_true", help="print the config and exit")


def run(args: argparse.Namespace) -> int:
    """Train (or resume); print where the run goes first, and how it ended."""
    if args.resume:
        if args.run_dir is None:
            raise UserError("--resume needs --run-dir")
        if args.preset or args.config or args.algo or args.seed is not None or args.print_config:
            raise UserError(
                "--resume continues the run with its saved config (RUN/config.toml): drop "
                "--preset/--config/--algo/--seed/--print-config (--steps may change)"
            )
        cfg, run_dir = None, args.run_dir  # RunDir refuses an empty one
    else:
        cfg = options.resolve_config(args)
        if args.print_config:
            print(to_toml(cfg), end="")
            return 0
        stamp = f"{cfg.algo}-{cfg.env.obs_type}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = Path("runs", stamp) if args.run_dir is None else args.run_dir
    steps = [f"run.total_steps={args.steps}"] if args.steps is not None else []
    overrides, progress = [*args.overrides, *steps], False if args.no_progress else None
    try:  # overrides: of a resumed run (a fresh one has them in cfg)
        trainer = open_run(
            cfg, run_dir, args.resume, overrides, args.sb3, args.keep_checkpoints, progress=progress
        )
    except ValueError as e:  # a config the learner refuses (CatchrlErrors: main prints them)
        raise UserError(first_line(e)) from e
    print(f"run directory: {run_dir}", flush=True)
    trust = " --sb3" if trainer.cfg.algo.startswith("sb3-") else ""  # SB3 files are pickles
    resume = f"catchrl train --run-dir {run_dir} --resume{trust}"
    trainer.second_signal_exit = f"stopped at once by a second signal; resume with `{resume}`"
    result = trainer.run()
    print(f"trained {result.games} games, {result.steps} env steps, {result.wall_time:.1f} s")
    if result.interrupted:
        print(f"interrupted: resume with `{resume}`")
        return result.exit_code
    if best := result.best:
        print(
            f"kept {best['model']}: validation {100 * best['win_rate']:.2f}% at step "
            f"{best['steps']} (game {best['games']}); final model {trainer.learner_cls.model_name}"
        )
    if result.final_eval is not None:
        print(f"test games ({result.eval_model}): {result.final_eval.summary()}")
    print(f"next: catchrl eval {run_dir}{trust}  |  catchrl watch {run_dir}{trust}")
    return 0
