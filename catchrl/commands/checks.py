"""Moved to :mod:`catchrl.commands.options` (kept until bench.py and train.py import it there)."""

from catchrl.commands.options import check_each, check_game_options, check_range, check_seed

__all__ = ["check_each", "check_game_options", "check_range", "check_seed"]
