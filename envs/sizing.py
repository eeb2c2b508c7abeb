"""The memory an env needs, estimated from its settings without allocating, and the check.

:func:`estimate_env_bytes` adds up, from the settings alone, what a
:class:`~catchrl.envs.CatchVectorEnv` holds and the most it holds at once:
per game the observation buffer, its returned copy, Gymnasium's batched Box
(which stores ``low``, ``high`` and two bool masks of the observation's full
shape: 4 bytes a pixel for uint8 frames), the frame stack's bookkeeping, the
games' states, spawns drawn ahead and generators; once, the pixel lookup
tables (:mod:`catchrl.envs.frame_tables`, :mod:`catchrl.envs.batch_framestack`);
and the largest passing need: building the Box, a step's temporaries, or the
final observations of a same-step autoreset. ``tests/envs/test_sizing.py``
checks it against what ``tracemalloc`` sees and the arrays' ``nbytes``.

:func:`check_env_fits` refuses, with a ``ValueError`` naming the settings,
an env that needs more than :func:`~catchrl.envs.memory.available_memory_bytes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from catchrl.envs.core import CatchParams
from catchrl.envs.frame_tables import TABLE_MAX_BYTES, paddle_rows
from catchrl.envs.framestack import check_frame_stack, stack_word
from catchrl.envs.memory import available_memory_bytes, format_gb
from catchrl.envs.observations import make_params
from catchrl.envs.raster import FrameRenderer, check_frame_size
from catchrl.envs.spawns import SPAWN_BLOCK

__all__ = [
    "CHECK_FROM_BYTES",
    "check_env_fits",
    "check_num_envs",
    "env_bytes",
    "estimate_env_bytes",
]

GENERATOR_BYTES = 1024
"""One game's seeded ``numpy.random.Generator`` (PCG64 and its SeedSequence): ~870 B measured."""

STEP_BYTES = 160
"""Per game: actions, rewards, flags and the core's step temporaries (~20 one-number arrays)."""

ENV_BYTES = 32 << 10
"""Per env: its Python objects, spaces of one game, small caches."""

CHECK_FROM_BYTES = 64 << 20
"""Envs estimated below this are not checked against the free memory (reading it costs ~0.5 ms)."""

_ENV_ONLY = ("autoreset_mode", "render_mode")  # env arguments that change no array's size


def estimate_env_bytes(num_envs: int = 1, **game_kwargs: Any) -> int:
    """Bytes a :class:`~catchrl.envs.CatchVectorEnv` of these settings needs at its peak.

    Cheap and allocation-free: it builds no array, only checks the settings
    (as the env would, with the same errors) and adds up sizes.

    Args:
        num_envs: Number of games N.
        **game_kwargs: What ``CatchVectorEnv`` / ``CatchEnv`` take: ``obs_type``,
            ``frame_size``, ``frame_stack``, ``copy``, ``autoreset_mode``,
            ``render_mode``, ``params`` or :class:`~catchrl.envs.CatchParams`
            fields (``width=...``).

    Returns:
        The estimate in bytes (within a factor of 2 of what the env allocates;
        measured on the book's game within 10 %).

    Raises:
        ValueError: a setting out of range (the parameter is named).
        TypeError: an unknown keyword.

    """
    kw = dict(game_kwargs)
    obs_type = kw.pop("obs_type", "pixels")
    frame_size = check_frame_size(kw.pop("frame_size", 80))
    frame_stack = check_frame_stack(kw.pop("frame_stack", 4))
    copy = bool(kw.pop("copy", True))
    mode = kw.get("autoreset_mode")
    same_step = str(getattr(mode, "value", mode)) == "same_step"  # a str or an AutoresetMode
    screen = kw.get("render_mode") is not None
    for name in _ENV_ONLY:
        kw.pop(name, None)
    params = make_params(obs_type, kw.pop("params", None), kw, "estimate_env_bytes")
    n = check_num_envs(num_envs, "estimate_env_bytes")
    return env_bytes(
        params,
        obs_type,
        n,
        frame_size,
        frame_stack,
        copy=copy,
        same_step=same_step,
        screen=screen,
    )


def env_bytes(
    params: CatchParams,
    obs_type: str,
    num_envs: int,
    frame_size: int,
    frame_stack: int,
    copy: bool = True,
    same_step: bool = False,
    screen: bool = False,
) -> int:
    """:func:`estimate_env_bytes` for settings already checked (what the envs call)."""
    held, passing = _parts(params, obs_type, num_envs, frame_size, frame_stack, copy, same_step)
    if screen:  # CatchEnv's rgb_array / window: the grey screen, scaled up, in RGB
        k = max(1, 400 // max(params.width, params.height))
        passing["screen"] = 5 * params.width * params.height * k * k
    return sum(held.values()) + max(passing.values(), default=0)


def check_env_fits(
    owner: str,
    params: CatchParams,
    obs_type: str,
    num_envs: int,
    frame_size: int,
    frame_stack: int,
    copy: bool = True,
    same_step: bool = False,
    screen: bool = False,
) -> int:
    """Refuse an env that needs more memory than is available; returns the estimate.

    Envs estimated below :data:`CHECK_FROM_BYTES` are let through unchecked.

    Raises:
        ValueError: e.g. ``"CatchVectorEnv: num_envs=10000000 with frame_size=80,
            frame_stack=4 needs ~2326.0 GB, more than the 20.1 GB available; lower
            num_envs"``.

    """
    need = env_bytes(params, obs_type, num_envs, frame_size, frame_stack, copy, same_step, screen)
    if need < CHECK_FROM_BYTES:
        return need
    free = available_memory_bytes()
    if need > free:
        if obs_type == "pixels":
            what = f"frame_size={frame_size}, frame_stack={frame_stack}"
        elif obs_type == "grid":
            what = "obs_type='grid'"
        else:
            what = f"obs_type={obs_type!r}"
        lower = "frame_size or frame_stack" if owner == "CatchEnv" else "num_envs"
        if (params.width, params.height) != (400, 400):
            what += f" on a {params.width} x {params.height} world"
            lower += " or the world's size"
        games = "" if owner == "CatchEnv" else f"num_envs={num_envs} with "
        raise ValueError(
            f"{owner}: {games}{what} needs ~{format_gb(need)}, more than the "
            f"{format_gb(free)} available; lower {lower}"
        )
    return need


def check_num_envs(num_envs: Any, owner: str) -> int:
    """``num_envs`` as an int >= 1, else a ``ValueError`` naming it (no upper bound but memory)."""
    if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, (bool, np.bool_)):
        raise ValueError(f"{owner}: num_envs must be a positive int, got {num_envs!r}")
    if num_envs < 1:
        raise ValueError(f"{owner}: num_envs must be a positive int, got {num_envs!r}")
    return int(num_envs)


def _parts(
    params: CatchParams,
    obs_type: str,
    n: int,
    size: int,
    depth: int,
    copy: bool,
    same_step: bool,
) -> tuple[dict[str, int], dict[str, int]]:
    """``(held, passing)``: bytes held for the env's life, and needs of which one passes at once."""
    p = params
    if obs_type == "pixels":
        cells, itemsize = size * size * depth, 1
    elif obs_type == "grid":
        cells, itemsize = p.height * p.width, 4
    else:
        cells, itemsize = 3 + (p.drift > 0), 4
    obs = cells * itemsize  # one game's observation
    space = 2 * obs + 2 * cells  # Box: low, high, bounded_below, bounded_above
    held = {
        "observations": n * obs,
        "observation_space": n * space + space,  # the batch's and one game's
        "games": n * (8 * 7 + 1 + 1 + 16),  # BatchState, needs_reset, the MultiDiscrete
        "spawns": n * 8 * (2 * SPAWN_BLOCK + 1),
        "generators": n * GENERATOR_BYTES,
        "env": ENV_BYTES,
    }
    step = n * (STEP_BYTES + obs * copy + obs * same_step)
    passing = {"observation_space": n * space, "step": step}
    if obs_type == "grid":  # GridBoards: the cells drawn (kept) and those drawn next
        drawn = n * 8 * (p.ball_size**2 + p.paddle_width * p.paddle_height)
        held["grid_cells"] = drawn + n * 8 * 2  # and the games' first cells
        passing["step"] += 3 * drawn
    if obs_type == "pixels":
        pixels_held, pixels_passing = _pixel_parts(p, n, size, depth)
        held.update(pixels_held)
        for name, value in pixels_passing.items():
            passing[name] = passing.get(name, 0) + value
    return held, passing


def _pixel_parts(
    p: CatchParams, n: int, size: int, depth: int
) -> tuple[dict[str, int], dict[str, int]]:
    """The frame stacks' own needs beyond the observation buffer (see ``_parts``)."""
    r = FrameRenderer(p, size)  # sizes only: it allocates nothing
    ball_hw, paddle_hw = r.ball_h * r.ball_w, r.paddle_h * r.paddle_w
    render = n * (size * size + 40 * (ball_hw + paddle_hw))  # frames + float64 coverages
    word = stack_word(depth)
    if word is None:  # plain stacks: every step renders every frame
        return {}, {"step": render}
    w = word.itemsize
    _, _, first, end = paddle_rows(r)
    band_h, px = end - first, p.paddle_max_x + 1
    ys, xs = p.height + 1, p.width + 1
    table_cells = ys * xs * ball_hw
    pieces = (
        ys * (8 * 3 + 2 + 8 * r.ball_h)  # rows, touched rows, flags, y coverages
        + xs * (8 * 3 + 8 * r.ball_w)
        + px * (8 * 3 + band_h * size)  # paddle columns and the band
        + (table_cells if table_cells <= TABLE_MAX_BYTES else 0)
    )
    stack = (
        2 * px * band_h * size * w  # the band, new on top and repeated
        + (table_cells * w if table_cells * w <= TABLE_MAX_BYTES else 0)
        + n * 8 * (2 * depth + 1)  # ring of window corners, frame offsets
    )
    gather = n * (depth + 2) * ball_hw * (8 + w)  # window indices and words, each step
    build = 3 * 8 * px * band_h * r.paddle_w + 3 * 8 * xs * ball_hw  # float64 while tabulating
    return (
        {"pixel_tables": pieces, "stack_tables": stack},
        {"step": gather + render, "tables_build": build},
    )
