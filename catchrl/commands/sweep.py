"""'catchrl sweep': a study on Ray Tune: a base config x a search space x seeds."""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

from catchrl import sweep
from catchrl.commands import options
from catchrl.commands.options import SEED, number, resolve_config
from catchrl.config import parse_override, read_toml, sets_frame_size
from catchrl.errors import UserError
from catchrl.learners import LEARNERS
from catchrl.stats import summarize_study

EPILOG = """examples:
  catchrl sweep --preset fast-state --grid agent.lr=1e-3,3e-4 --seeds 3 [--search tpe]
  catchrl sweep --preset fast-state --random agent.lr=loguniform:1e-4:3e-3 --samples 8
  catchrl sweep --config study.toml            # a [sweep] table in the file
  catchrl sweep --resume studies/lr            # finish a stopped study (Tuner.restore)
  catchrl sweep --address auto ...             # on a running Ray cluster

Any config field can be swept (TABLE.KEY as for --set); each setting plays --seeds seeds
(run.seed, run.seed + 1, ...); each trial is a run in STUDY/trials/NAME. See docs/sweeps.md.
"""


def _text(value: str) -> str:
    """An argparse ``type``: text that is not blank."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _entry(part: str, text: str) -> tuple[str, Any]:
    """An argparse ``type``: ``TABLE.KEY=V1,V2`` (or ``KIND:LOW:HIGH``) as a table's entry."""
    key, _, spec = (word.strip() for word in text.partition("="))
    kind, colon, bounds = spec.partition(":")
    bounded = part == "random" and colon and kind in sweep.BOUNDED
    words = bounds.split(":") if bounded else spec.split(",")
    if "." not in key or not all(word.strip() for word in words):
        raise argparse.ArgumentTypeError(f"{text!r}: expected table.key=VALUES, e.g. agent.lr=1e-3")
    values = [parse_override(f"x.x={word}")[2] for word in words]  # TOML, as --set reads it
    return key, {kind: values} if bounded else values


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl sweep``; the options of a ``[sweep]`` table keep its keys' names."""
    help = "a study (search space x seeds) on Ray Tune, locally or on a cluster"
    shared = [options.config("the base config (a --config file may hold a [sweep] table)")]
    p = options.add_command(sub, "sweep", help, __doc__, EPILOG, [*shared, options.trust()], run)
    help = "dqn, or an SB3/RLlib agent (default: the config's, dqn)"
    p.add_argument("--algo", choices=LEARNERS, metavar="ALGO", help=help)
    p.add_argument("--steps", type=int, help="shortcut for --set run.total_steps=N")
    grid, random = functools.partial(_entry, "grid"), functools.partial(_entry, "random")
    help = "every value, every combination (repeatable)"
    p.add_argument("--grid", type=grid, action="append", metavar="TABLE.KEY=V1,V2", help=help)
    help = "V1,V2 or uniform|loguniform|randint:LOW:HIGH, drawn (repeatable)"
    p.add_argument("--random", type=random, action="append", metavar="TABLE.KEY=SPEC", help=help)
    p.add_argument("--search", choices=("random", "tpe"), help="random (default) or tpe")
    p.add_argument("--samples", type=number(1), help="random draws, or TPE's settings")
    p.add_argument("--seeds", type=number(1), help="seeds per setting (default 1)")
    p.add_argument("--search-seed", type=SEED, help="seed of the draws and of TPE (default 0)")
    help = "the study's folder (default studies/<preset>-<time>)"
    p.add_argument("--study-dir", type=_text, help=help)
    p.add_argument("--resume", metavar="STUDY", help="finish the study in this folder")
    share, retries = number(0, kind=float), number(-1, note="-1: retry forever")
    p.add_argument("--cpus-per-trial", type=share, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=share, help="GPUs per trial, 0.25 = a quarter")
    p.add_argument("--max-failures", type=retries, help="Tune's retries of a trial (default 3)")
    p.add_argument("--max-concurrent", type=number(0), help="trials at once (default 0: all fit)")
    p.add_argument("--asha", action="store_true", default=None, help="stop weak trials early")
    help = "join a Ray cluster: auto or HOST:PORT (default: a local Ray)"
    p.add_argument("--address", type=_text, help=help)
    p.add_argument("--num-cpus", type=number(1), help="CPUs of the local Ray (default: all)")
    p.add_argument("--print-space", action="store_true", default=None, help="print it and exit")


RESUMED_WITH = {"resume", "address", "num_cpus", "sb3", "verbose", "help"}
"""The options ``--resume`` takes: the others make a study (its study.toml holds them)."""


def run(args: argparse.Namespace) -> int:
    """Create and run a study (or resume one); print its summary."""
    actions = [a for a in args.parser._actions if a.dest not in RESUMED_WITH]
    made = [a.option_strings[0] for a in actions if getattr(args, a.dest) not in (None, [])]
    if args.resume and made:
        raise UserError(f"--resume continues the study as it was made: drop {made[0]}")
    try:
        study = Path(args.resume) if args.resume else _create(args)
        if study is None:
            return 0
        plan, _ = sweep.load_study(study)
        print(f"study: {study} ({plan['trials']} trials)", flush=True)
        print(f"TensorBoard: tensorboard --logdir {study / 'trials'}", flush=True)
        rc, done = sweep.run_study(study, bool(args.resume), args.address, args.num_cpus, args.sb3)
        summarize_study(study, *sweep.load_study(study))
    except ImportError as e:
        raise UserError(f"catchrl sweep needs {e.name}: pip install 'catchrl[ray]'") from e
    print((study / "summary.md").read_text(encoding="utf-8"), end="")
    made = "summary.md and summary.png" if (study / "summary.png").is_file() else "summary.md"
    print(f"{done}/{plan['trials']} trials finished; {made} in {study}")
    if rc >= 128:
        print(f"stopped: finish it with `catchrl sweep --resume {study}`")
    return rc


def _create(args: argparse.Namespace) -> Path | None:
    """Resolve the base config and the plan; write the study's folder (None: only printed)."""
    data = read_toml(args.config) if args.config else {}
    plan = sweep.read_sweep(data.get("sweep", {}), str(args.config), vars(args))
    # the user's own SB3/RLlib settings (checked): each trial's other defaults are its own
    base = resolve_config(args, defaults=False)
    for key, (kind, values) in plan["space"].items():
        if kind in sweep.BOUNDED:  # what Tune draws: floats; randint's HIGH is excluded
            values = [values[0], values[1] - 1] if kind == "randint" else list(map(float, values))
        for value in values:  # each value (each bound) through the config's own checks
            override = f"{key}={json.dumps(value)}"
            try:
                resolve_config(args, [override])
            except UserError as e:  # named as the swept value, not as a --set never typed
                raise UserError(f"swept {e}".replace(f"--set {override}", override)) from None
    if args.print_space:
        for key, (kind, values) in plan["space"].items():
            shown = repr(values)[1:-1] if kind in sweep.BOUNDED else repr(values)
            print(f"{key}: tune.{kind}({shown})")
        seeds = f"{plan['seeds']} seeds per setting"
        print(f"search {plan['search']}: {plan['trials']} trials ({seeds})")
        return None
    sweep.check_trust(base.algo, args.sb3)
    import ray.tune  # noqa: F401  (before the folder is made: a missing Ray writes nothing)

    if plan["search"] == "tpe":
        import optuna  # noqa: F401
    name = f"{base.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    study = Path(args.study_dir) if args.study_dir else Path("studies") / name
    given = sets_frame_size(data, args.overrides)  # else each trial's own frame size
    return sweep.create_study(study, base, plan, () if given else ("env.frame_size",))
