"""``catchrl sweep``: a study on Ray Tune — a base config × a search space × seeds."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from catchrl.cli import UserError
from catchrl.config import add_override_argument
from catchrl.errors import CatchrlError

EPILOG = """examples:
  catchrl sweep --preset fast-state --grid agent.lr=1e-3,3e-4 --seeds 3
  catchrl sweep --preset fast-state --random agent.batch_size=32,64,128 \\
      --random agent.lr=loguniform:1e-4:3e-3 --samples 8 --seeds 2 --asha
  catchrl sweep --config study.toml --study-dir studies/lr     # a [sweep] table in the file
  catchrl sweep --resume studies/lr                  # finish a stopped study
  catchrl sweep --address auto ...                   # on a running Ray cluster

A study is settings x seeds: every combination of the --grid values, each with
--samples draws of the --random parameters (a list, or uniform:LOW:HIGH,
loguniform:LOW:HIGH, randint:LOW:HIGH), each played with --seeds seeds
(run.seed, run.seed + 1, ...). Any config field can be swept (TABLE.KEY as for
--set). Each trial is an ordinary run in STUDY/trials/NAME (catchrl eval, plot and
watch read it). The table and plot are written to STUDY/summary.md and
STUDY/summary.png. Ctrl-C, SIGTERM or SIGHUP stop the study; --resume finishes it
without rerunning finished trials. A trial whose worker dies is retried from its
last checkpoint (--max-failures). Ray: pip install 'catchrl[ray]'. See docs/sweeps.md.

[sweep] table of a --config file:
  [sweep]
  seeds = 3
  samples = 4
  grid = { "agent.lr" = [1e-3, 3e-4] }
  random = { "agent.batch_size" = [32, 64], "agent.gamma" = { uniform = [0.9, 0.99] } }
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl sweep``."""
    p = sub.add_parser(
        "sweep",
        help="a study (search space x seeds) on Ray Tune, locally or on a cluster",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--algo", default="dqn", help="dqn (default) or an SB3 agent (sb3-ppo, ...)")
    p.add_argument("--preset", default=None, help="base config: fast (default), fast-state, book")
    p.add_argument("--config", type=Path, help="TOML base config (may hold a [sweep] table)")
    add_override_argument(p, "override one setting of the base config (repeatable)")
    p.add_argument("--steps", type=int, help="shortcut for --set run.total_steps=N")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="TABLE.KEY=V1,V2",
        help="sweep a field over these values, every combination (repeatable)",
    )
    p.add_argument(
        "--random",
        action="append",
        default=[],
        metavar="TABLE.KEY=DIST",
        help="draw a field per sample: V1,V2,... or uniform|loguniform|randint:LOW:HIGH",
    )
    p.add_argument("--samples", type=int, help="draws of the --random fields (default 1)")
    p.add_argument("--seeds", type=int, help="seeds per setting (default 1)")
    p.add_argument("--search-seed", type=int, default=0, help="seed of the random draws")
    p.add_argument("--study-dir", help="the study's folder (default studies/<preset>-<time>)")
    p.add_argument("--resume", metavar="STUDY", help="finish the study in this folder")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, help="GPUs per trial, 0.25 = a quarter")
    p.add_argument(
        "--max-failures", type=int, default=3, help="retries of a trial whose worker dies"
    )
    p.add_argument("--max-concurrent", type=int, default=0, help="trials at once (0: all fit)")
    p.add_argument("--asha", action="store_true", default=None, help="stop weak trials early")
    p.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--print-plan", action="store_true", help="print the trials and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan, create and run a study (or resume one); print its table."""
    from catchrl import sweep

    _check_numbers(args)
    try:
        if args.resume:
            if args.preset or args.config or args.overrides or args.grid or args.random:
                raise UserError(
                    "--resume continues the study as planned; drop the config and search options"
                )
            study = Path(args.resume)
            sweep.load_study(study)
        else:
            study = _create(args)
            if study is None:
                return 0
        print(f"study: {study}", flush=True)
        outcome = sweep.run_study(
            study, resume=bool(args.resume), address=args.address, num_cpus=args.num_cpus
        )
        summary = sweep.summarize(study)
    except ImportError as e:
        raise UserError(
            f"catchrl sweep needs Ray Tune ({e.name}): pip install 'catchrl[ray]'"
        ) from e
    except CatchrlError as e:
        raise UserError(_one_line(e)) from e
    print(sweep.format_table(summary), end="")
    print(f"{outcome.finished}/{outcome.total} trials finished; table and plot in {study}")
    if outcome.interrupted:
        print(f"stopped: finish it with `catchrl sweep --resume {study}`")
    if outcome.stopped_early:
        print(f"stopped early by ASHA: {', '.join(outcome.stopped_early)}")
    if outcome.failed:
        print(f"failed trials: {', '.join(outcome.failed)} (see {study}/tune)")
    return outcome.exit_code


def _check_numbers(args: argparse.Namespace) -> None:
    from catchrl.commands.checks import check_range

    check_range("--seeds", args.seeds, 1)
    check_range("--samples", args.samples, 1)
    check_range("--cpus-per-trial", args.cpus_per_trial, 0)
    check_range("--gpus-per-trial", args.gpus_per_trial, 0)
    check_range("--max-failures", args.max_failures, -1, note="-1: retry forever")
    check_range("--max-concurrent", args.max_concurrent, 0)
    check_range("--num-cpus", args.num_cpus, 1)
    if args.address is not None and not args.address.strip():
        raise UserError("--address is empty; give auto or HOST:PORT")
    if args.study_dir is not None and not args.study_dir.strip():
        raise UserError("--study-dir is empty; give a folder name")


def _create(args: argparse.Namespace) -> Path | None:
    """Resolve the base config and the plan; write the study (None: only printed)."""
    from catchrl import sweep

    base, table = _base_config(args)
    space_cli = sweep.space_from_args(args.grid, args.random, args.samples)
    space, options = (
        sweep.space_from_table(table, str(args.config)) if table else (sweep.SearchSpace(), {})
    )
    for key, values in space_cli.grid.items():
        sweep._add(space.grid, key, values)
    for key, dist in space_cli.random.items():
        sweep._add(space.random, key, dist)
    space.samples = args.samples if args.samples is not None else options.get("samples", 1)
    seeds = args.seeds if args.seeds is not None else options.get("seeds", 1)
    plan = sweep.plan_study(base, space, _int("seeds", seeds), args.search_seed)
    ray = sweep.RayOptions(
        cpus_per_trial=_pick(args.cpus_per_trial, options, "cpus_per_trial", 1.0),
        gpus_per_trial=_pick(args.gpus_per_trial, options, "gpus_per_trial", 0.0),
        max_failures=args.max_failures,
        asha=bool(_pick(args.asha, options, "asha", False)),
        max_concurrent=args.max_concurrent,
    )
    if args.print_plan:
        for t in plan.trials:
            print(f"{t.name}\t{' '.join(t.overrides)}")
        print(
            f"{len(plan.settings)} settings x {len(plan.seeds)} seeds = {len(plan.trials)} trials"
        )
        return None
    _require_ray()  # before the study folder is made
    study = (
        Path(args.study_dir)
        if args.study_dir
        else Path("studies") / (f"{base.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    return sweep.create_study(study, base, plan, ray)


def _require_ray() -> None:
    try:
        import ray.tune  # noqa: F401
    except ImportError as e:
        raise UserError(
            f"catchrl sweep needs Ray Tune ({e.name} is not installed): pip install 'catchrl[ray]'"
        ) from e


def _pick(given: Any, options: dict[str, Any], key: str, default: Any) -> Any:
    value = given if given is not None else options.get(key, default)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UserError(f"sweep.{key} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UserError(f"sweep.{key} must be a number >= 0, got {value!r}")
    return float(value)


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"sweep.{key} must be an integer, got {value!r}")
    return value


def _base_config(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The base config as ``catchrl train`` would build it, and the file's ``[sweep]`` table."""
    from catchrl import sweep
    from catchrl.commands.train import resolve_config

    if args.config is None:
        return resolve_config(_train_args(args, None)), {}
    text, table = sweep.split_sweep_table(args.config)
    with tempfile.TemporaryDirectory(prefix="catchrl-sweep-") as tmp:
        path = Path(tmp) / args.config.name
        path.write_text(text, encoding="utf-8")
        try:
            return resolve_config(_train_args(args, path)), table
        except UserError as e:
            raise UserError(str(e).replace(str(path), str(args.config))) from None


def _train_args(args: argparse.Namespace, config: Path | None) -> argparse.Namespace:
    return argparse.Namespace(
        algo=args.algo,
        preset=args.preset,
        config=config,
        overrides=list(args.overrides),
        seed=None,
        steps=args.steps,
    )


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
