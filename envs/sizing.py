"""The memory refusal: what would not fit in the free memory is refused up front, in one line.

:func:`check_fits`, used by the envs, the replay memory, the datasets and the run's check,
raises a ``ValueError`` naming the setting to lower (a server sees it, not a killed process).
The estimates count the big arrays only; the free memory is ``MemAvailable`` within the
process's cgroup limits.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.envs.core import CatchParams
from catchrl.envs.observations import make_params
from catchrl.envs.render import check_frame_size, check_frame_stack

OBS_COPIES = 10  # an env's peak per game, in observations (stack, Box bounds and masks, step): ~9
GAME_BYTES = 1536  # per game: its generator and numbers (~1.3 KB measured)
CHECK_FROM_BYTES = 64 << 20  # smaller envs skip the check (reading the free memory costs ~0.5 ms)

MEMINFO = Path("/proc/meminfo")
_NO_LIMIT = 1 << 60  # cgroup files say "max" or a huge number where nothing is limited


def estimate_env_bytes(num_envs: int = 1, **game_kwargs: Any) -> int:
    """Bytes a :class:`~catchrl.envs.CatchVectorEnv` of these arguments needs at its peak.

    ``num_envs x (OBS_COPIES observations + GAME_BYTES)``, a little above what it
    allocates (measured); allocates nothing.
    """
    kw = {"obs_type": "pixels", "frame_size": 80, "frame_stack": 4, **game_kwargs}
    for name in ("autoreset_mode", "copy", "render_mode"):
        kw.pop(name, None)
    obs_type, size, depth = kw.pop("obs_type"), kw.pop("frame_size"), kw.pop("frame_stack")
    p = make_params(obs_type, kw.pop("params", None), kw, "estimate_env_bytes")
    size, depth = check_frame_size(size), check_frame_stack(depth)
    obs = {"pixels": size * size * depth, "grid": 4 * p.height * p.width}.get(obs_type, 16)
    return check_num_envs(num_envs, "estimate_env_bytes") * (OBS_COPIES * obs + GAME_BYTES)


def check_env_fits(owner: str, params: CatchParams, obs_type: str, *sizes: int) -> None:
    """Refuse an env of ``sizes`` = (num_envs, frame_size, frame_stack) that would not fit."""
    n, size, depth = sizes
    kw = {"obs_type": obs_type, "frame_size": size, "frame_stack": depth, "params": params}
    need, what = estimate_env_bytes(n, **kw), f"frame_size={size}, frame_stack={depth}"
    if need < CHECK_FROM_BYTES:
        return
    what = what if obs_type == "pixels" else f"obs_type={obs_type!r}"
    if owner == "CatchEnv":
        check_fits(f"CatchEnv: {what}", need, "frame_size, frame_stack or the world's size")
    else:
        check_fits(f"{owner}: num_envs={n} with {what}", need, "num_envs")


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

    ``MemAvailable`` (else the free pages), lowered to the headroom of the process's
    cgroup and its parents (a container's limit); unknown: not limited.
    """
    kb = _number(MEMINFO, "MemAvailable")
    free = _NO_LIMIT if kb is None else kb * 1024
    if kb is None and "SC_AVPHYS_PAGES" in os.sysconf_names:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    headroom = _cgroup_headroom(Path("/proc/self/cgroup"), Path("/sys/fs/cgroup"))
    return max(0, free if headroom is None else min(free, headroom))


def _number(path: Path, key: str = "") -> int | None:
    # The number after key at a line's start (without key: the file's one value); "max": none.
    try:
        found = re.search(rf"^{key}\W*(\d+|max)", path.read_text(), re.MULTILINE)
    except OSError:
        return None
    return None if found is None else _NO_LIMIT if found[1] == "max" else int(found[1])


def _cgroup_headroom(proc_cgroup: Path, root: Path) -> int | None:
    # The least limit - working set (usage less inactive page cache, as container runtimes
    # count it) over the process's cgroup and its parents: v2 (memory.max) and v1 (also
    # in "hybrid" mode, whose unified tree holds no memory controller).
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    left = []
    for line in lines:
        _, controllers, rel = [*line.split(":", 2), "", ""][:3]
        if controllers == "":  # v2: "0::/path"
            base, limit_name, usage_name = root, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # v1: "4:memory:/path"
            base, limit_name = root / "memory", "memory.limit_in_bytes"
            usage_name = "memory.usage_in_bytes"
        else:
            continue
        parts = [p for p in rel.strip().split("/") if p and p != ".."]
        for d in (base.joinpath(*parts[:k]) for k in range(len(parts) + 1)):
            limit = _number(d / limit_name)
            if limit is not None and limit < _NO_LIMIT:
                cache = _number(d / "memory.stat", "inactive_file") or 0  # dropped first
                left.append(limit - max(0, (_number(d / usage_name) or 0) - cache))
    return min(left, default=None)
