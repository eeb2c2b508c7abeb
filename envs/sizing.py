"""The memory an env needs, estimated without allocating; the memory free; the refusal.

:func:`check_fits`, used by the envs, the replay memory and the run's check, raises a
``ValueError`` naming the setting to lower (a server sees it, not a killed process).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.envs.core import CatchParams
from catchrl.envs.observations import make_params
from catchrl.envs.render import FrameRenderer, check_frame_size, check_frame_stack, screen_scale

GENERATOR_BYTES = 1024  # a game's seeded Generator (PCG64 and its SeedSequence): ~870 B measured
STEP_BYTES = 400  # per game: actions, rewards, flags, the core's arrays (~50 numbers)
ENV_BYTES = 32 << 10  # per env: its Python objects and one game's spaces
CHECK_FROM_BYTES = 64 << 20  # smaller envs skip the check (reading the free memory costs ~0.5 ms)

_NO_LIMIT = 1 << 60  # cgroup files say "max" or a huge number where nothing is limited


def estimate_env_bytes(num_envs: int = 1, **game_kwargs: Any) -> int:
    """Bytes a :class:`~catchrl.envs.CatchVectorEnv` of these arguments needs at its peak.

    What it holds (observations, Box bounds and masks, games, generators) plus its
    largest passing need; builds no array.
    """
    kw, name = dict(game_kwargs), "estimate_env_bytes"
    obs_type, mode = kw.pop("obs_type", "pixels"), kw.pop("autoreset_mode", None)
    size = check_frame_size(kw.pop("frame_size", 80))
    depth = check_frame_stack(kw.pop("frame_stack", 4))
    flags = {"copy": bool(kw.pop("copy", True)), "screen": kw.pop("render_mode", None) is not None}
    flags["same_step"] = str(getattr(mode, "value", mode)) == "same_step"  # str or AutoresetMode
    params = make_params(obs_type, kw.pop("params", None), kw, name)
    return env_bytes(params, obs_type, check_num_envs(num_envs, name), size, depth, **flags)


def env_bytes(p: CatchParams, obs_type: str, n: int, size: int, depth: int, **flags: bool) -> int:
    """:func:`estimate_env_bytes` for checked settings (flags: copy, same_step, screen)."""
    copy, same_step = flags.get("copy", True), flags.get("same_step", False)
    cells = {"pixels": size * size * depth, "grid": p.height * p.width}
    cells = cells.get(obs_type, 3 + (p.drift > 0))
    obs = cells * (1 if obs_type == "pixels" else 4)
    space = 2 * obs + 2 * cells  # Box: low, high, bounded_below, bounded_above
    held = n * (space + 8 * 8 + 16 + GENERATOR_BYTES) + space + ENV_BYTES
    step = n * (STEP_BYTES + obs * copy + obs * same_step)
    if obs_type == "pixels":
        r = FrameRenderer(p, size)  # sizes only: it allocates nothing
        held += n * (obs + 16 * depth)  # the stacks and their rings of window corners
        windows = r.ball_h * r.ball_w + r.paddle_h * r.paddle_w
        step += n * (60 * windows + (depth + 1) * r.ball_h * r.ball_w * (8 + depth))
    else:
        step += n * 3 * obs  # a new observation each step, and its temporaries
    passing = max(n * space, step)
    if flags.get("screen"):  # CatchEnv's rgb_array / window: the grey screen, scaled up, in RGB
        passing = max(passing, 5 * p.width * p.height * screen_scale(p) ** 2)
    return held + passing


def check_env_fits(
    owner: str, params: CatchParams, obs_type: str, *sizes: int, **flags: bool
) -> int:
    """The estimate for ``sizes`` = (num_envs, frame_size, frame_stack); refused if not free."""
    need, (num_envs, frame_size, frame_stack) = env_bytes(params, obs_type, *sizes, **flags), sizes
    if need < CHECK_FROM_BYTES:
        return need
    what = f"obs_type={obs_type!r}"
    if obs_type == "pixels":
        what = f"frame_size={frame_size}, frame_stack={frame_stack}"
    if owner == "CatchEnv":
        return check_fits(f"CatchEnv: {what}", need, "frame_size, frame_stack or the world's size")
    return check_fits(f"{owner}: num_envs={num_envs} with {what}", need, "num_envs")


def check_fits(what: str, need: int, lower: str) -> int:
    """``need`` bytes if they are available, else a ``ValueError`` naming the setting to lower.

    The message: ``"{what} needs ~1.2 GB, more than the 0.5 GB available; lower {lower}"``.
    """
    free = available_memory_bytes()
    if need > free:
        raise ValueError(
            f"{what} needs ~{format_gb(need)}, more than the {format_gb(free)} available; "
            f"lower {lower}"
        )
    return need


def check_num_envs(num_envs: Any, owner: str) -> int:
    """``num_envs`` as an int >= 1, else a ``ValueError`` naming it (no upper bound but memory)."""
    ok = isinstance(num_envs, (int, np.integer)) and not isinstance(num_envs, (bool, np.bool_))
    if not ok or num_envs < 1:
        raise ValueError(f"{owner}: num_envs must be a positive int, got {num_envs!r}")
    return int(num_envs)


def format_gb(n_bytes: int) -> str:
    """``n_bytes`` in decimal gigabytes, one decimal (``"52.0 GB"``; ``"0.002 GB"`` if small)."""
    gb = n_bytes / 1e9
    return f"{gb:.1f} GB" if gb >= 0.1 else f"{gb:.3g} GB"


def available_memory_bytes() -> int:
    """Bytes that can still be allocated without swapping, as the kernel sees it.

    ``MemAvailable``, lowered to the headroom of the process's cgroup (a container's
    limit); else the free pages; else 0.
    """
    free = _meminfo_available(Path("/proc/meminfo"))
    if free is None:
        try:
            free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            free = 0
    headroom = _cgroup_headroom(Path("/proc/self/cgroup"), Path("/sys/fs/cgroup"))
    return max(0, min(free, headroom) if headroom is not None else free)


def _meminfo_available(path: Path) -> int | None:
    kb = _stat(path, "MemAvailable")
    return None if kb is None else kb * 1024


def _stat(path: Path, *names: str) -> int | None:
    # The number after the first of names in "key value" lines; without names, the file's one value.
    try:
        for line in path.read_text().splitlines():
            key, *rest = line.replace(":", " ").split() or [""]
            if not names or key in names:
                value = rest[0] if names else key
                return _NO_LIMIT if value == "max" else int(value)
    except (OSError, ValueError, IndexError):
        return None
    return None


_CACHE = ("inactive_file", "total_inactive_file")  # page cache the kernel drops first (v2, v1)


def _cgroup_headroom(proc_cgroup: Path, root: Path) -> int | None:
    # The least limit - working set (usage less inactive page cache, as container runtimes
    # count it) over the process's cgroup and its parents: v2 (memory.max) and v1.
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    v2_root = root / "unified" if (root / "unified").is_dir() else root  # "hybrid" v1 + v2
    dirs: list[tuple[Path, str, str]] = []  # (cgroup dir, limit file, usage file)
    for line in lines:
        _, controllers, rel = [*line.split(":", 2), "", ""][:3]
        parts = [p for p in rel.strip().split("/") if p and p != ".."]
        if controllers == "":  # v2: "0::/path"
            base, names = v2_root, ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # v1: "4:memory:/path"
            base, names = root / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        dirs += [(base.joinpath(*parts[:k]), *names) for k in range(len(parts), -1, -1)]
    best: int | None = None
    for d, limit_name, usage_name in dirs:
        limit = _stat(d / limit_name)
        if limit is None or limit >= _NO_LIMIT:
            continue
        usage, cache = _stat(d / usage_name) or 0, _stat(d / "memory.stat", *_CACHE) or 0
        left = limit - max(0, usage - cache)
        best = left if best is None else min(best, left)
    return best
