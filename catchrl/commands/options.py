"""The options several commands share, each written once, and the checks of their numbers.

A check runs before a command loads, opens or writes, and raises :class:`catchrl.cli.UserError`
naming the option; the bounds are the config's, so ``--set`` and an option accept the same numbers.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from pathlib import Path

from catchrl.cli import UserError
from catchrl.config import (
    MAX_BALLS_PER_GAME,
    SEED_MAX,
    ConfigError,
    EnvConfig,
    Range,
    check_game,
    choices,
)
from catchrl.fields import GAME_KEYS


def add_config_options(p: argparse.ArgumentParser, what: str = "starting config") -> None:
    """``--preset``, ``--config FILE`` and repeatable ``--set TABLE.KEY=VALUE`` (``overrides``)."""
    p.add_argument("--preset", help=f"{what}: fast (default, pixels), fast-state, book")
    p.add_argument("--config", type=Path, help="TOML file with [env], [agent], [run] tables")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override one setting (repeatable)",
    )


def add_run_dir(p: argparse.ArgumentParser, required: bool = False, default: str = "") -> None:
    """``--run-dir`` and ``--resume`` (continue the run in it)."""
    where = " (created)" if required else f" (default {default})" if default else ""
    p.add_argument("--run-dir", required=required, help=f"where to write the run{where}")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")


def add_games(
    p: argparse.ArgumentParser, games: int, seed: int | None, seed_help: str, what: str = ""
) -> None:
    """``--games`` (how many to play) and ``--seed`` (of game 0; game j plays SEED + j)."""
    p.add_argument("--games", type=int, default=games, help=what or f"games (default {games})")
    p.add_argument("--seed", type=int, default=seed, help=seed_help)


def add_json(p: argparse.ArgumentParser) -> None:
    """``--json``: the result as JSON."""
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_trust_sb3(
    p: argparse.ArgumentParser,
    help: str = "allow loading an SB3 .zip (it unpickles code: trusted files only)",
) -> None:
    """``--sb3`` (or ``--trust-sb3``): trust a pickle; SB3's files run code when loaded."""
    p.add_argument("--sb3", "--trust-sb3", dest="sb3", action="store_true", help=help)


def add_game_options(p: argparse.ArgumentParser, model: bool = True, **defaults: object) -> None:
    """The game: ``--drift``, ``--balls``, ``--walls``, ``--spawn`` (``defaults`` by ``args`` name).

    With ``model``, also ``--model best|final`` and ``--obs-type``, for commands that
    load an agent (its run gives the defaults).
    """
    if model:
        p.add_argument(
            "--model",
            choices=("best", "final"),
            default="best",
            help="of a run directory: best (the kept best validation model, default) or final",
        )
        p.add_argument("--obs-type", choices=choices(EnvConfig, "obs_type"))
    p.add_argument("--drift", type=int, metavar="N", help="largest sideways ball speed, px a step")
    p.add_argument("--balls", type=int, metavar="N", dest="balls_per_game", help="balls per game")
    p.add_argument("--walls", choices=("clamp", "book"), help="book: the book's bounce walls")
    p.add_argument("--spawn", choices=("visible", "book"), help="book: balls up to x = 400")
    p.set_defaults(**defaults)


def game_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The game options given on the command line."""
    keys = ("obs_type", *GAME_KEYS)  # as ``args`` names (--obs-type, --drift, --balls...)
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


GAME_OPTIONS = {
    "drift": "--drift",
    "balls_per_game": "--balls",
    "walls": "--walls",
    "spawn": "--spawn",
}
"""How the game's parameters are spelled on the command line."""


def check_range(
    option: str,
    value: float | None,
    low: float,
    high: float | None = None,
    *,
    above: bool = False,
    allow_inf: bool = False,
    note: str = "",
) -> None:
    """Refuse ``value`` unless ``low <= value <= high`` (``low < value`` with ``above``).

    None (the option left out) passes; NaN never does, ``inf`` only with ``allow_inf``.
    """
    if value is None or (allow_inf and high is None and value == math.inf):
        return
    try:
        Range(low, math.inf if high is None else high, above, note).check(option, value)
    except ConfigError as e:
        raise UserError(str(e).replace(f"{option}: ", f"{option} ", 1)) from None


def check_each(option: str, values: Iterable[float], low: float, high: float | None = None) -> None:
    """:func:`check_range` on every value of a list option (``nargs="+"``)."""
    for value in values:
        check_range(option, value, low, high)


def check_seed(option: str, value: int | None) -> None:
    """A seed must be in ``[0, 2**32 - 1]``, as ``run.seed`` (numpy's and Keras' seeds)."""
    check_range(option, value, 0, SEED_MAX, note="seeds are 32-bit")


def check_game_options(args: argparse.Namespace, obs_type: str | None = "pixels") -> None:
    """Check ``--drift`` and ``--balls``; with a known ``obs_type`` (None: not yet), the game."""
    balls = getattr(args, "balls_per_game", getattr(args, "balls", None))
    check_range("--drift", getattr(args, "drift", None), 0)
    check_range("--balls", balls, 1, MAX_BALLS_PER_GAME)
    if obs_type is None:
        return
    game = {"drift": getattr(args, "drift", None), "balls_per_game": balls}
    game |= {k: getattr(args, k, None) for k in ("walls", "spawn")}
    try:
        check_game(obs_type, {k: v for k, v in game.items() if v is not None}, GAME_OPTIONS)
    except ConfigError as e:
        text = str(e)
        for option in GAME_OPTIONS.values():  # "--drift: must be" -> "--drift must be"
            text = text.replace(f"{option}: ", f"{option} ", 1) if text.startswith(option) else text
        raise UserError(text) from None
