"""Options several commands share (argparse parents), the config they ask for, bounded numbers."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from catchrl.api import make_config
from catchrl.config import MAX_BALLS_PER_GAME, SEED_MAX, EnvConfig, TrainConfig
from catchrl.errors import CatchrlError, UserError, first_line
from catchrl.evaluation import MAX_EVAL_GAMES
from catchrl.fields import GAME_KEYS, ConfigError, Range, check_game, choices


def number(
    low: float,
    high: float = math.inf,
    *,
    kind: type = int,
    above: bool = False,
    allow_inf: bool = False,
    note: str = "",
) -> Callable[[str], Any]:
    """An argparse ``type`` checked as the config's ``Range``; ``inf`` only with ``allow_inf``."""
    bounds = Range(low, high, above, note)

    def parse(text: str) -> Any:
        try:
            value = kind(text)
            if not (allow_inf and value == math.inf):
                bounds.check("", value)
        except ConfigError as e:  # a ValueError too
            raise argparse.ArgumentTypeError(str(e).removeprefix(": ")) from None
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        return value

    return parse


SEED = number(0, SEED_MAX, note="seeds are 32-bit")
"""A seed, in ``run.seed``'s range (numpy's and Keras' seeds)."""
GAME_SEED = number(0, 2**62, note="game seeds are below 2**62")
"""The seed of an evaluated game (not 32-bit: the test games start at 2**41)."""


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    help: str,
    description: str | None = None,
    epilog: str | None = None,
    parents: Sequence[argparse.ArgumentParser] = (),
    func: Callable[[argparse.Namespace], int] | None = None,
) -> argparse.ArgumentParser:
    """A command's parser with ``parents``' options; one that runs ``func`` has ``--verbose``."""
    description = description or f"{help[0].upper()}{help[1:]}."
    p = sub.add_parser(name, help=help, description=description, epilog=epilog, parents=parents)
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # the examples as written
    if func:
        p.add_argument("--verbose", action="store_true", help="show TensorFlow's logs")
    p.set_defaults(func=func, parser=p)
    return p


def config(what: str = "starting config") -> argparse.ArgumentParser:
    """``--preset``, ``--config FILE`` and repeatable ``--set TABLE.KEY=VALUE`` (``overrides``)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--preset", help=f"{what}: fast (default, pixels), fast-state, book")
    p.add_argument("--config", type=Path, help="TOML file with [env], [agent], [run] tables")
    help, meta = "override one setting (repeatable)", "TABLE.KEY=VALUE"
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar=meta, help=help)
    return p


def run_dir(required: bool = False, default: str = "") -> argparse.ArgumentParser:
    """``--run-dir`` and ``--resume`` (continue the run in it)."""
    p = argparse.ArgumentParser(add_help=False)
    where = " (created)" if required else f" (default {default})" if default else ""
    p.add_argument("--run-dir", required=required, help=f"where to write the run{where}")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    return p


def games(
    default: int,
    seed: int | None,
    seed_help: str,
    seed_type: Callable = GAME_SEED,
    most: float = MAX_EVAL_GAMES - 1,
) -> argparse.ArgumentParser:
    """``--games`` (how many to play) and ``--seed`` (of game 0; game j plays SEED + j)."""
    p = argparse.ArgumentParser(add_help=False)
    count = number(0, most, above=True)
    p.add_argument("--games", type=count, default=default, help=f"games (default {default})")
    p.add_argument("--seed", type=seed_type, default=seed, help=seed_help)
    return p


def trust() -> argparse.ArgumentParser:
    """``--sb3`` (or ``--trust-sb3``): SB3's files are pickles, which run code when loaded."""
    p = argparse.ArgumentParser(add_help=False)
    help = "trust SB3 files (.zip, checkpoints): loading one unpickles code"
    p.add_argument("--sb3", "--trust-sb3", dest="sb3", action="store_true", help=help)
    return p


def agent() -> argparse.ArgumentParser:
    """The agent to load (``AGENT``, ``--model``, ``--sb3``) and the game it plays."""
    p = argparse.ArgumentParser(add_help=False, parents=[trust(), game()])
    p.add_argument("agent", help="run directory, model file, or oracle/random")
    help = "of a run directory: best (the kept best validation model, default) or final"
    p.add_argument("--model", choices=("best", "final"), default="best", help=help)
    p.add_argument("--obs-type", choices=choices(EnvConfig, "obs_type"))
    return p


def game(**defaults: Any) -> argparse.ArgumentParser:
    """The game's options (``defaults``: the command's own)."""
    p = argparse.ArgumentParser(add_help=False)
    help = "largest sideways ball speed, px a step"
    p.add_argument("--drift", type=number(0), metavar="N", help=help)
    balls = number(1, MAX_BALLS_PER_GAME)
    p.add_argument("--balls", type=balls, metavar="N", dest="balls_per_game", help="balls per game")
    p.add_argument("--walls", choices=("clamp", "book"), help="book: the book's bounce walls")
    p.add_argument("--spawn", choices=("visible", "book"), help="book: balls up to x = 400")
    p.set_defaults(**defaults)
    return p


def game_overrides(args: argparse.Namespace, obs_type: str | None = "pixels") -> dict[str, Any]:
    """The game options given, as ``CatchEnv`` arguments (``obs_type``: bounds the drift)."""
    if obs_type is not None and args.drift is not None:
        check_game(obs_type, {"drift": args.drift}, "--drift")
    keys = ("obs_type", *GAME_KEYS)
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def resolve_config(
    args: argparse.Namespace, extra: Sequence[str] = (), defaults: bool = True
) -> TrainConfig:
    """The config the options (and ``extra``) ask for; ``defaults``: as ``make_config``'s."""
    given = {"run.seed": getattr(args, "seed", None), "run.total_steps": args.steps}  # shortcuts
    overrides = [*args.overrides, *extra, *(f"{k}={v}" for k, v in given.items() if v is not None)]
    try:
        return make_config(args.preset or "fast", args.config, overrides, args.algo, defaults)
    except (CatchrlError, ValueError, ImportError) as e:
        raise UserError(first_line(e)) from e
