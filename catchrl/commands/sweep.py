"""'catchrl sweep': a study on Ray Tune: a base config x a search space x seeds."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from catchrl.commands import options
from catchrl.commands.options import number
from catchrl.errors import UserError
from catchrl.fields import COUNT, NON_NEGATIVE, POSITIVE, coerce, field_hints
from catchrl.learners import LEARNERS
from catchrl.sweep import BOUNDED, KINDS

EPILOG = """examples:
  catchrl sweep --preset fast-state --grid agent.lr=1e-3,3e-4 --seeds 3
  catchrl sweep --preset fast-state --grid agent.lr=1e-3,3e-4 --seeds 3 --search tpe
  catchrl sweep --preset fast-state --random agent.lr=loguniform:1e-4:3e-3 --samples 8
  catchrl sweep --config study.toml            # a [sweep] table in the file
  catchrl sweep --resume studies/lr            # finish a stopped study (Tuner.restore)
  catchrl sweep --address auto ...             # on a running Ray cluster

Any config field can be swept (TABLE.KEY as for --set); each setting plays --seeds seeds
(run.seed, run.seed + 1, ...); each trial is a run in STUDY/trials/NAME. See docs/sweeps.md.
"""


@dataclass
class TableOptions:
    """What a ``[sweep]`` table may hold besides its space (the command line wins)."""

    seeds: Annotated[int, POSITIVE] = 1
    samples: Annotated[int, COUNT] = 0  # 0: one draw (random), the grid's size (tpe)
    search: Literal["random", "tpe"] = "random"
    asha: bool = False
    cpus_per_trial: Annotated[float, NON_NEGATIVE] = 1.0
    gpus_per_trial: Annotated[float, NON_NEGATIVE] = 0.0


def _text(value: str) -> str:
    """An argparse ``type``: text that is not blank."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl sweep``."""
    help = "a study (search space x seeds) on Ray Tune, locally or on a cluster"
    shared = [options.config("the base config (a --config file may hold a [sweep] table)")]
    p = options.add_command(sub, "sweep", help, __doc__, EPILOG, [*shared, options.trust()], run)
    help = "dqn, or an SB3/RLlib agent (default: the config's, dqn)"
    p.add_argument("--algo", choices=LEARNERS, metavar="ALGO", help=help)
    p.add_argument("--steps", type=int, help="shortcut for --set run.total_steps=N")
    for part, values, help in (
        ("grid", "V1,V2", "every value, every combination (repeatable)"),
        ("random", "SPEC", "V1,V2 or uniform|loguniform|randint:LOW:HIGH, drawn (repeatable)"),
    ):
        spec = functools.partial(_typed_entry, part)
        metavar = f"TABLE.KEY={values}"
        p.add_argument(
            f"--{part}", type=spec, action="append", default=[], metavar=metavar, help=help
        )
    p.add_argument("--search", choices=("random", "tpe"), help="random (default) or tpe")
    p.add_argument("--samples", type=number(1), help="random draws, or TPE's settings")
    p.add_argument("--seeds", type=number(1), help="seeds per setting (default 1)")
    p.add_argument("--search-seed", type=int, default=0, help="seed of the draws and of TPE")
    p.add_argument(
        "--study-dir", type=_text, help="the study's folder (default studies/<preset>-<time>)"
    )
    p.add_argument("--resume", metavar="STUDY", help="finish the study in this folder")
    share = number(0, kind=float)
    p.add_argument("--cpus-per-trial", type=share, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=share, help="GPUs per trial, 0.25 = a quarter")
    retries = number(-1, note="-1: retry forever")
    p.add_argument("--max-failures", type=retries, default=3, help="Tune's retries of a trial")
    p.add_argument(
        "--max-concurrent", type=number(0), default=0, help="trials at once (0: all fit)"
    )
    p.add_argument("--asha", action="store_true", default=None, help="stop weak trials early")
    p.add_argument(
        "--address", type=_text, help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)"
    )
    p.add_argument("--num-cpus", type=number(1), help="CPUs of the local Ray (default: all)")
    p.add_argument("--print-space", action="store_true", help="print the space and exit")


def run(args: argparse.Namespace) -> int:
    """Create and run a study (or resume one); print its summary."""
    from catchrl import sweep
    from catchrl.stats import summarize_study

    try:
        if args.resume:
            if args.preset or args.config or args.overrides or args.grid or args.random:
                raise UserError("--resume continues the study as it was made: drop the options")
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
        summarize_study(study, *sweep.load_study(study))
    except ImportError as e:
        raise UserError(f"catchrl sweep needs {e.name}: pip install 'catchrl[ray]'") from e
    print((study / "summary.md").read_text(encoding="utf-8"), end="")
    print(f"{done}/{doc['trials']} trials finished; summary.md and summary.png in {study}")
    if code >= 128:
        print(f"stopped: finish it with `catchrl sweep --resume {study}`")
    return code


def _create(args: argparse.Namespace) -> tuple[Path | None, dict[str, Any]]:
    """Resolve the base config and the space; write the study's folder (None: only printed)."""
    from catchrl import sweep
    from catchrl.commands.train import resolve_config
    from catchrl.config import read_toml

    table = read_toml(args.config).get("sweep", {}) if args.config else {}
    if not isinstance(table, dict):
        raise UserError(f"{args.config}: [sweep] must be a table, got {table!r}")
    hints = field_hints(TableOptions)
    unknown = sorted(set(table) - set(hints) - {"grid", "random"})
    if unknown:
        raise UserError(f"{args.config}: unknown key sweep.{unknown[0]}")
    base = resolve_config(args)
    space = _space(args, table)
    for key, (_, values) in space.items():
        for value in values:  # each value (each bound) through the config's own checks
            override = f"{key}={json.dumps(value)}"
            try:
                resolve_config(args, [override])
            except UserError as e:  # named as the swept value, not as a --set never typed
                raise UserError(f"swept {e}".replace(f"--set {override}", override)) from None
    opts = dataclasses.asdict(TableOptions())
    for key, hint in hints.items():  # each as the config's fields are checked
        given = getattr(args, key)
        if given is None and key in table:
            given = coerce(f"{args.config}: sweep.{key}", table[key], hint)
        opts[key] = opts[key] if given is None else given
    search = opts["search"]
    if search == "tpe" and opts["asha"]:
        raise UserError("--asha goes with --search random (TPE's Repeater needs every seed's end)")
    grid = math.prod(len(values) for kind, values in space.values() if kind == "grid_search")
    samples = opts["samples"] or (1 if search == "random" else grid)
    drawn = any(kind != "grid_search" for kind, _ in space.values())
    if search == "random" and samples > 1 and not drawn:
        raise UserError("--samples > 1 repeats identical settings: give --random parameters")
    doc = {
        **opts,
        "space": space,
        "samples": samples,
        "trials": samples * opts["seeds"] * (grid if search == "random" else 1),
        "search_seed": args.search_seed,
        "max_failures": args.max_failures,
        "max_concurrent": args.max_concurrent,
    }
    if args.print_space:
        for key, (kind, values) in sweep.tune_calls(space, search).items():
            shown = repr(values)[1:-1] if kind in BOUNDED else repr(values)
            print(f"{key}: tune.{kind}({shown})")
        print(f"search {search}: {doc['trials']} trials ({opts['seeds']} seeds per setting)")
        return None, doc
    sweep.check_trust(base.algo, args.sb3)
    import ray.tune  # noqa: F401  (before the folder is made: a missing Ray writes nothing)

    if search == "tpe":
        import optuna  # noqa: F401
    name = f"{base.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    study = Path(args.study_dir) if args.study_dir else Path("studies") / name
    return sweep.create_study(study, base, doc), doc


def _typed_entry(part: str, text: str) -> tuple[str, Any]:
    """An argparse ``type``: ``TABLE.KEY=V1,V2`` (or ``KIND:LOW:HIGH``) as a table's entry."""
    from catchrl.config import parse_override

    key, _, spec = (word.strip() for word in text.partition("="))
    kind, colon, bounds = spec.partition(":")
    bounded = part == "random" and colon and kind in BOUNDED
    words = bounds.split(":") if bounded else spec.split(",")
    if "." not in key or not all(word.strip() for word in words):
        raise argparse.ArgumentTypeError(f"{text!r}: expected table.key=VALUES, e.g. agent.lr=1e-3")
    values = [parse_override(f"x.x={word}")[2] for word in words]  # TOML, as --set reads it
    return key, {kind: values} if bounded else values


def _space(args: argparse.Namespace, table: dict[str, Any]) -> dict[str, tuple[str, list]]:
    """``TABLE.KEY -> (Tune's function, its arguments)`` from the table, --grid and --random."""
    space: dict[str, tuple[str, list]] = {}
    for part in ("grid", "random"):
        given = table.get(part, {})
        if not isinstance(given, dict):
            raise UserError(f"{args.config}: sweep.{part} must be a table, got {given!r}")
        for key, spec in [*given.items(), *getattr(args, part)]:
            if isinstance(spec, list):
                kind, values = ("grid_search" if part == "grid" else "choice"), spec
            elif part == "random" and isinstance(spec, dict) and len(spec) == 1:
                [(kind, values)] = spec.items()
                values = values if isinstance(values, list) else [values]
            else:
                raise UserError(f"{args.config}: sweep.{part}.{key} must be a list, got {spec!r}")
            if key in space:
                raise UserError(f"{key} is swept twice")
            if key == "run.seed":
                raise UserError("run.seed is set by --seeds (seeds run.seed, run.seed + 1, ...)")
            if kind not in KINDS:
                raise UserError(f"{key}: unknown distribution {kind!r}; choose {KINDS[1:]}")
            if not values:
                raise UserError(f"{key}: no values")
            if kind in BOUNDED:
                number = int if kind == "randint" else (int, float)
                ok = all(isinstance(a, number) and not isinstance(a, bool) for a in values)
                ok = ok and len(values) == 2 and values[0] < values[1]
                if not ok or (kind == "loguniform" and values[0] <= 0):
                    what = "integers" if kind == "randint" else "numbers"
                    low = "0 < LOW" if kind == "loguniform" else "LOW"
                    raise UserError(f"{key}: {kind} needs two {what} {low} < HIGH, got {values}")
            space[key] = kind, values
    return space
