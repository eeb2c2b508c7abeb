"""Upper bounds on an env's sizes, far beyond any game here: a typo is refused, named.

Memory as a whole is checked in :mod:`catchrl.envs.sizing`.
"""

from typing import Any

import numpy as np

MAX_WORLD_SIZE = 10_000  # width and height: 25 x the book's 400
MAX_FRAME_SIZE = 1024  # frame_size: 12.8 x the book's 80
MAX_FRAME_STACK = 64  # frame_stack: 16 x the book's 4
MAX_BALLS_PER_GAME = 10**9  # counts and episode lengths stay far inside int64


def check_int_range(name: str, value: Any, low: int, high: int, what: str = "") -> int:
    """``value`` as an int if it is one in ``[low, high]``, else a ``ValueError`` naming it."""
    about = f" ({what})" if what else ""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}{about} must be an int in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}{about} must be an int in [{low}, {high}], got {value}")
    return int(value)
