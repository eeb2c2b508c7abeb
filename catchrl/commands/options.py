"""The options several commands share, each written once (their checks: ``commands.checks``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from catchrl.config import EnvConfig, choices
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
