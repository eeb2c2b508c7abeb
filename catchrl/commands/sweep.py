"""``catchrl sweep``: a study on Ray Tune — a base config × a search space × seeds."""

from __future__ import annotations

import argparse
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from catchrl.cli import UserError
from catchrl.commands.options import add_config_options, add_trust_sb3
from catchrl.errors import CatchrlError

EPILOG = """examples:
  catchrl sweep --preset fast-state --grid agent.lr=1e-3,3e-4 --seeds 3
  catchrl sweep --preset fast-state --grid agent.lr=1e-3,3e-4 --grid agent.batch_size=64,128 \\
      --seeds 3 --search tpe                         # Optuna's TPE picks 4 settings
  catchrl sweep --preset fast-state --random agent.lr=loguniform:1e-4:3e-3 --samples 8
  catchrl sweep --config study.toml --study-dir studies/lr     # a [sweep] table in the file
  catchrl sweep --resume studies/lr                  # finish a stopped study (Tuner.restore)
  catchrl sweep --address auto ...                   # on a running Ray cluster

The space is Ray Tune's: --grid values are tune.grid_search (tune.choice for TPE);
--random takes V1,V2 (tune.choice) or uniform|loguniform|randint:LOW:HIGH (Tune's
functions; randint excludes HIGH). Any config field can be swept (TABLE.KEY as for
--set). --search random (default): every grid point x --samples random draws;
--search tpe: Optuna's TPE (Tune's OptunaSearch) proposes --samples settings
(default: the grid's size). Each setting is played with --seeds seeds (run.seed,
run.seed + 1, ...). Each trial is an ordinary run in STUDY/trials/NAME (catchrl
eval, plot and watch read it). Ctrl-C, SIGTERM or SIGHUP stop the study; --resume
finishes it. See docs/sweeps.md.

[sweep] table of a --config file:
  [sweep]
  seeds = 3
  search = "tpe"
  samples = 4
  grid = { "agent.lr" = [1e-3, 3e-4] }
  random = { "agent.batch_size" = [32, 64], "agent.n_step" = { randint = [1, 4] } }
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
    add_config_options(p, "the base config (a --config file may hold a [sweep] table)")
    p.add_argument("--steps", type=int, help="shortcut for --set run.total_steps=N")
    for name, what in (
        ("grid", "V1,V2: every value, every combination (tune.grid_search)"),
        ("random", "V1,V2 (tune.choice) or uniform|loguniform|randint:LOW:HIGH, drawn"),
    ):
        p.add_argument(f"--{name}", action="append", default=[], metavar="TABLE.KEY=SPEC",
                       help=f"{what} (repeatable)")  # fmt: skip
    p.add_argument("--search", choices=("random", "tpe"), help="random (default) or tpe")
    p.add_argument("--samples", type=int, help="random draws, or TPE's settings")
    p.add_argument("--seeds", type=int, help="seeds per setting (default 1)")
    p.add_argument("--search-seed", type=int, default=0, help="seed of the draws and of TPE")
    p.add_argument("--study-dir", help="the study's folder (default studies/<preset>-<time>)")
    p.add_argument("--resume", metavar="STUDY", help="finish the study in this folder")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, help="GPUs per trial, 0.25 = a quarter")
    p.add_argument("--max-failures", type=int, default=3, help="Tune's retries of a trial")
    p.add_argument("--max-concurrent", type=int, default=0, help="trials at once (0: all fit)")
    p.add_argument("--asha", action="store_true", default=None, help="stop weak trials early")
    p.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--print-space", action="store_true", help="print the space and exit")
    add_trust_sb3(p, "trust the study's SB3 checkpoints (pickles) when trials resume")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Create and run a study (or resume one); print its summary."""
    from catchrl import sweep

    _check_numbers(args)
    try:
        if args.resume:
            if args.preset or args.config or args.overrides or args.grid or args.random:
                raise UserError("--resume continues the study as it was made; drop the config "
                                "and search options")  # fmt: skip
            study = Path(args.resume)
            doc, _ = sweep.load_study(study)
        else:
            study, doc = _create(args)
            if study is None:
                return 0
        print(f"study: {study} ({doc['trials']} trials)", flush=True)
        print(f"TensorBoard: tensorboard --logdir {study / 'trials'}", flush=True)
        code, done = sweep.run_study(
            study, bool(args.resume), args.address, args.num_cpus, trust_pickle=args.sb3
        )
        sweep.summarize(study)
    except ImportError as e:
        raise UserError(f"catchrl sweep needs {e.name}: pip install 'catchrl[ray]'") from e
    except CatchrlError as e:
        raise UserError(_one_line(e)) from e
    print((study / "summary.md").read_text(encoding="utf-8"), end="")
    print(f"{done}/{doc['trials']} trials finished; summary.md and summary.png in {study}")
    if code >= 128:
        print(f"stopped: finish it with `catchrl sweep --resume {study}`")
    return code


def _check_numbers(args: argparse.Namespace) -> None:
    from catchrl.commands.checks import check_range

    check_range("--seeds", args.seeds, 1)
    check_range("--samples", args.samples, 1)
    check_range("--cpus-per-trial", args.cpus_per_trial, 0)
    check_range("--gpus-per-trial", args.gpus_per_trial, 0)
    check_range("--max-failures", args.max_failures, -1, note="-1: retry forever")
    check_range("--max-concurrent", args.max_concurrent, 0)
    check_range("--num-cpus", args.num_cpus, 1)
    for name in ("address", "study_dir"):
        if getattr(args, name) is not None and not getattr(args, name).strip():
            raise UserError(f"--{name.replace('_', '-')} is empty")


def _create(args: argparse.Namespace) -> tuple[Path | None, dict[str, Any]]:
    """Resolve the base config and the space; write the study's folder (None: only printed)."""
    from catchrl import sweep

    base, table = _base_config(args)
    space, opts = _parse_table(table, str(args.config)) if table else ({}, {})
    for option in ("--grid", "--random"):
        for text in getattr(args, option[2:]):
            _add(space, *_parse(text, option))
    sweep.check_space(space, base)
    if base.algo.startswith("sb3") and not args.sb3 and not args.print_space:
        raise UserError(
            f"{base.algo} trials resume from pickled SB3 checkpoints (Tune's retries, "
            "--resume), which can run code: pass --sb3 to trust the study's own files"
        )
    search = args.search or opts.get("search", "random")
    if search not in ("random", "tpe"):
        raise UserError(f"sweep.search must be random or tpe, got {search!r}")
    grid = math.prod(len(a) for k, a in space.values() if k == "grid_search")
    drawn = any(k != "grid_search" for k, _ in space.values())
    samples = _int("samples", args.samples, opts, 1 if search == "random" else grid)
    if search == "random" and samples > 1 and not drawn:
        raise UserError("--samples > 1 repeats identical settings: give --random parameters")
    seeds = _int("seeds", args.seeds, opts, 1)
    if search == "tpe" and (args.asha or opts.get("asha")):
        raise UserError("--asha goes with --search random (TPE's Repeater needs every seed's end)")
    doc = {
        "space": space,
        "search": search,
        "search_seed": args.search_seed,
        "seeds": seeds,
        "samples": samples,
        "trials": samples * seeds * (grid if search == "random" else 1),
        "asha": bool(args.asha if args.asha is not None else opts.get("asha", False)),
        "cpus_per_trial": _number("cpus_per_trial", args.cpus_per_trial, opts, 1.0),
        "gpus_per_trial": _number("gpus_per_trial", args.gpus_per_trial, opts, 0.0),
        "max_failures": args.max_failures,
        "max_concurrent": args.max_concurrent,
        "preset": base.preset,
        "algo": base.algo,
    }
    if args.print_space:
        for key, (kind, values) in space.items():
            kind = "choice" if kind == "grid_search" and search == "tpe" else kind
            shown = repr(values) if kind in ("grid_search", "choice") else repr(values)[1:-1]
            print(f"{key}: tune.{kind}({shown})")
        print(f"search {search}: {doc['trials']} trials ({seeds} seeds per setting)")
        return None, doc
    import ray.tune  # noqa: F401  (before the folder is made: a missing Ray writes nothing)

    if search == "tpe":
        import optuna  # noqa: F401
    name = f"{base.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    study = Path(args.study_dir) if args.study_dir else Path("studies") / name
    return sweep.create_study(study, base, doc), doc


def _parse(text: str, option: str) -> tuple[str, tuple[str, list[Any]]]:
    """``--grid KEY=V1,V2`` -> (key, ("grid_search", values)); ``--random`` -> choice/uniform/..."""
    from catchrl.config import parse_override

    key, sep, spec = (part.strip() for part in text.partition("="))
    if not sep or "." not in key or not spec:
        raise UserError(f"{option} {text!r}: expected table.key=VALUES, e.g. agent.lr=1e-3,3e-4")
    head, colon, rest = spec.partition(":")
    if option == "--random" and colon and head in ("uniform", "loguniform", "randint"):
        return key, (head, [parse_override(f"x.x={v}")[2] for v in rest.split(":")])
    if not all(v.strip() for v in spec.split(",")):
        raise UserError(f"{option} {text!r}: an empty value")
    values = [parse_override(f"x.x={v}")[2] for v in spec.split(",")]
    return key, ("grid_search" if option == "--grid" else "choice", values)


def _parse_table(table: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``[sweep]`` table: its space (``grid``, ``random``) and its other options."""
    options = {"seeds", "samples", "search", "asha", "cpus_per_trial", "gpus_per_trial"}
    unknown = sorted(set(table) - options - {"grid", "random"})
    if unknown:
        raise UserError(f"{source}: unknown key sweep.{unknown[0]}")
    space: dict[str, Any] = {}
    for part in ("grid", "random"):
        entries = table.get(part, {})
        if not isinstance(entries, dict):
            raise UserError(f"{source}: sweep.{part} must be a table, got {entries!r}")
        for key, spec in entries.items():
            if isinstance(spec, list):
                _add(space, key, ("grid_search" if part == "grid" else "choice", spec))
            elif part == "random" and isinstance(spec, dict) and len(spec) == 1:
                ((kind, args),) = spec.items()
                _add(space, key, (kind, args if isinstance(args, list) else [args]))
            else:
                raise UserError(f"{source}: sweep.{part}.{key} must be a list, got {spec!r}")
    return space, {k: v for k, v in table.items() if k in options}


def _add(space: dict[str, Any], key: str, entry: tuple[str, list[Any]]) -> None:
    if key in space:
        raise UserError(f"{key} is swept twice")
    space[key] = entry


def _int(key: str, given: int | None, opts: dict[str, Any], default: int) -> int:
    value = given if given is not None else opts.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"sweep.{key} must be an integer >= 1, got {value!r}")
    return value


def _number(key: str, given: float | None, opts: dict[str, Any], default: float) -> float:
    value = given if given is not None else opts.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UserError(f"sweep.{key} must be a number >= 0, got {value!r}")
    return float(value)


_SWEEP_TABLE = re.compile(r"^\s*\[\s*sweep\s*[\].]")
_ANY_TABLE = re.compile(r"^\s*\[")


def _base_config(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The base config as ``catchrl train`` would build it, and the file's ``[sweep]`` table."""
    from catchrl.commands.train import resolve_config
    from catchrl.config import read_toml

    train = argparse.Namespace(
        algo=args.algo, preset=args.preset, config=None, overrides=list(args.overrides),
        seed=None, steps=args.steps,
    )  # fmt: skip
    if args.config is None:
        return resolve_config(train), {}
    try:
        table = read_toml(args.config).get("sweep", {})
    except CatchrlError as e:
        raise UserError(_one_line(e)) from e
    if not isinstance(table, dict):
        raise UserError(f"{args.config}: [sweep] must be a table, got {table!r}")
    kept, inside = [], False  # the file's text without its [sweep] tables
    for line in args.config.read_text(encoding="utf-8").splitlines():
        inside = bool(_SWEEP_TABLE.match(line)) or (inside and not _ANY_TABLE.match(line))
        kept.append("" if inside else line)
    with tempfile.TemporaryDirectory(prefix="catchrl-sweep-") as tmp:
        train.config = Path(tmp) / args.config.name
        train.config.write_text("\n".join(kept) + "\n", encoding="utf-8")
        try:
            return resolve_config(train), table
        except UserError as e:
            raise UserError(str(e).replace(str(train.config), str(args.config))) from None


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
