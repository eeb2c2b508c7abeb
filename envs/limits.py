"""Upper bounds on the sizes an env may be built with, and the check that applies them.

Generous but finite: each is far beyond any game played here, and each keeps
the arrays it sizes within what a server has, so that a typo such as
``width=10**9`` is refused at once with the parameter's name, instead of
allocating until the process is killed. Memory for the whole env (its
``num_envs`` included) is checked separately, against what the machine has
free (:func:`catchrl.envs.sizing.check_env_fits`).

- ``MAX_WORLD_SIZE`` (10 000 px): ``width`` and ``height``, 25 times the
  book's 400. Tables indexed by world position (:class:`~catchrl.envs.frame_tables.FramePieces`)
  and ``grid`` boards grow with it.
- ``MAX_FRAME_SIZE`` (1024 px): ``frame_size``, 12.8 times the book's 80; one
  ``(1024, 1024, 4)`` stack is 4 MiB.
- ``MAX_FRAME_STACK`` (64): ``frame_stack``, 16 times the book's 4.
- ``MAX_BALLS_PER_GAME`` (10**9): ``balls_per_game``, so that counts and
  episode lengths stay far inside int64. ``paddle_speed`` is at most ``width``
  (a faster paddle crosses the world in one step anyway).
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_WORLD_SIZE = 10_000
MAX_FRAME_SIZE = 1024
MAX_FRAME_STACK = 64
MAX_BALLS_PER_GAME = 10**9


def check_int_range(name: str, value: Any, low: int, high: int, what: str = "") -> int:
    """Return ``value`` as an int if it is one in ``[low, high]``, else raise naming ``name``.

    Args:
        name: The parameter's name, as the caller spelled it (``"frame_size"``).
        value: What was passed.
        low: Smallest allowed value.
        high: Largest allowed value.
        what: Optional words on what the parameter is, put in the message.

    Raises:
        ValueError: not an int (bools excluded), or outside ``[low, high]``.

    """
    about = f" ({what})" if what else ""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}{about} must be an int in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}{about} must be an int in [{low}, {high}], got {value}")
    return int(value)
