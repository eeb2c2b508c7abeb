"""Checks of the commands' numeric options, made before a command loads, opens or writes.

Each failed check raises :class:`catchrl.cli.UserError` naming the option, which
the CLI prints as one line before exiting 2. The bounds are the config's
(:mod:`catchrl.config`): the same game accepts the same numbers from ``--set``
and from the options here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable

from catchrl.cli import UserError
from catchrl.config import MAX_BALLS_PER_GAME, SEED_MAX, ConfigError, check_game

__all__ = [
    "GAME_OPTIONS",
    "check_each",
    "check_game_options",
    "check_range",
    "check_seed",
]

GAME_OPTIONS = {
    "drift": "--drift",
    "balls_per_game": "--balls",
    "walls": "--walls",
    "spawn": "--spawn",
}
"""How the game's parameters are spelled on the command line."""


def _number(value: float) -> str:
    return "2**32 - 1" if value == SEED_MAX else f"{value:g}"


def check_range(
    option: str,
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    *,
    above: bool = False,
    allow_inf: bool = False,
    note: str = "",
) -> None:
    """Refuse ``value`` unless ``low <= value <= high`` (``low < value`` with ``above``).

    Args:
        option: The option as typed (``"--games"``), named in the message.
        value: What was given; None (the option left out) passes.
        low: Smallest value (None: no lower bound).
        high: Largest value (None: no upper bound).
        above: ``low`` itself is refused.
        allow_inf: Whether ``inf`` is accepted (NaN never is).
        note: Words on what the option means, shown in the message.

    Raises:
        UserError: Out of range, NaN, or infinite where ``allow_inf`` is False.

    """
    if value is None:
        return
    about = f" ({note})" if note else ""
    if isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and not allow_inf)):
        raise UserError(f"{option} must be a finite number{about}, got {value}")
    too_low = low is not None and (value <= low if above else value < low)
    too_high = high is not None and value > high
    if not (too_low or too_high):
        return
    if low is None:
        bounds = f"<= {_number(high or 0)}"
    elif high is None:
        bounds = f"{'>' if above else '>='} {_number(low)}"
    else:
        bounds = f"in {'(' if above else '['}{_number(low)}, {_number(high)}]"
    raise UserError(f"{option} must be {bounds}{about}, got {value}")


def check_each(option: str, values: Iterable[float], low: float, high: float | None = None) -> None:
    """:func:`check_range` on every value of a list option (``nargs="+"``)."""
    for value in values:
        check_range(option, value, low, high)


def check_seed(option: str, value: int | None) -> None:
    """A seed must be in ``[0, 2**32 - 1]``, as ``run.seed`` (numpy's and Keras' seeds)."""
    check_range(option, value, 0, SEED_MAX, note="seeds are 32-bit")


def check_game_options(args: argparse.Namespace, obs_type: str | None = "pixels") -> None:
    """Check ``--drift`` and ``--balls``; with a known ``obs_type``, the whole game too.

    Args:
        args: Parsed options; ``drift`` and ``balls_per_game`` (or ``balls``) are read,
            and ``walls`` / ``spawn`` if present.
        obs_type: The observation type of the game the options apply to (``grid`` plays a
            5-column board, so allows less drift); None when it is not known yet (the
            run's own game), which checks the options only on their own.

    Raises:
        UserError: Naming the option the game refuses.

    """
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
            if text.startswith(f"{option}: "):
                text = f"{option} {text[len(option) + 2 :]}"
        raise UserError(text) from None
