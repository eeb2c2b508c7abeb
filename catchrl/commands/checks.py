"""Checks of the commands' numeric options, made before a command loads, opens or writes.

Each raises :class:`catchrl.cli.UserError` naming the option; the bounds are the
config's (:mod:`catchrl.config`), so ``--set`` and an option accept the same numbers.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable

from catchrl.cli import UserError
from catchrl.config import MAX_BALLS_PER_GAME, SEED_MAX, ConfigError, Range, check_game

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
