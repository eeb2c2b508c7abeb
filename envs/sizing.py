"""An env's arguments checked once, and the memory refusal: what would not fit is refused.

:func:`check_env_args` checks what both envs and :func:`estimate_env_bytes` take.
:func:`check_fits`, used by the envs, the replay memory, the datasets and the run's check,
raises a ``ValueError`` naming the setting to lower (a server sees it, not a killed process).
The estimates count the big arrays only; the free memory is ``MemAvailable`` within the
process's cgroup limits.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from catchrl.envs.core import MAX_FRAME_STACK, CatchParams, check_int_range, is_int
from catchrl.envs.observations import OBS_TYPES
from catchrl.envs.render import check_frame_size

OBS_COPIES = 10  # an env's peak per game, in observations (stack, Box bounds and masks, step): ~9
GAME_BYTES = 1536  # per game: its generator and numbers (~1.3 KB measured)
CHECK_FROM_BYTES = 64 << 20  # smaller envs skip the check (reading the free memory costs ~0.5 ms)

MEMINFO = Path("/proc/meminfo")
_NO_LIMIT = 1 << 60  # cgroup files say "max" or a huge number where nothing is limited
_V1_FILES = ("memory.limit_in_bytes", "memory.usage_in_bytes")  # cgroup v1's names
_PARAM_NAMES = tuple(f.name for f in dataclasses.fields(CatchParams))


def estimate_env_bytes(num_envs: int = 1, **game_kwargs: Any) -> int:
    """Bytes a :class:`~catchrl.envs.CatchVectorEnv` of these arguments needs at its peak.

    ``num_envs x (OBS_COPIES observations + GAME_BYTES)``, a little above what it
    allocates (measured); allocates nothing.
    """
    kw = {"obs_type": "pixels", "frame_size": 80, "frame_stack": 4, **game_kwargs}
    for name in ("autoreset_mode", "copy", "render_mode"):
        kw.pop(name, None)
    obs_type, size, depth = kw.pop("obs_type"), kw.pop("frame_size"), kw.pop("frame_stack")
    args = (obs_type, kw.pop("params", None), kw, num_envs, size, depth)
    return check_env_args("estimate_env_bytes", *args, refuse=False)[-1]


def check_env_args(
    owner: str, obs_type: str, params: Any, overrides: dict, *sizes: Any, refuse: bool = True
) -> tuple[CatchParams, int, int, int, int]:
    """An env's arguments checked once: ``(params, num_envs, frame_size, frame_stack, bytes)``.

    ``sizes``: num_envs, frame_size, frame_stack. The game is ``params`` or ``CatchParams``
    of ``overrides`` (``grid``: bsuite's board). With ``refuse``, an env that would not fit
    in the free memory raises ``ValueError``.
    """
    n, size, depth = sizes
    if obs_type not in OBS_TYPES:
        raise ValueError(f"{owner}: unknown obs_type {obs_type!r}; choose one of {OBS_TYPES}")
    unknown = sorted(set(overrides) - set(_PARAM_NAMES))
    if unknown:
        raise TypeError(
            f"{owner}: unknown argument(s) {unknown}; game parameters are {list(_PARAM_NAMES)} "
            "(plus obs_type, frame_size, frame_stack, render_mode)"
        )
    if params is None:
        params = (CatchParams.bsuite if obs_type == "grid" else CatchParams)(**overrides)
    elif overrides:
        raise TypeError(f"{owner}: give either params= or keyword overrides, not both")
    elif not isinstance(params, CatchParams):
        raise TypeError(f"{owner}: params must be a CatchParams, got {type(params).__name__}")
    if not (is_int(n) and n >= 1):
        raise ValueError(f"{owner}: num_envs must be a positive int, got {n!r}")
    size, stack = check_frame_size(size), "frames per observation"
    depth = check_int_range("frame_stack", depth, 1, MAX_FRAME_STACK, stack)
    obs = {"pixels": size * size * depth, "grid": 4 * params.height * params.width}
    need = int(n) * (OBS_COPIES * obs.get(obs_type, 16) + GAME_BYTES)
    if refuse and need >= CHECK_FROM_BYTES:
        what = f"frame_size={size}, frame_stack={depth}"
        what = what if obs_type == "pixels" else f"obs_type={obs_type!r}"
        if owner == "CatchEnv":
            check_fits(f"CatchEnv: {what}", need, "frame_size, frame_stack or the world's size")
        else:
            check_fits(f"{owner}: num_envs={n} with {what}", need, "num_envs")
    return params, int(n), size, depth, need


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
            base, limit_name, usage_name = root / "memory", *_V1_FILES
        else:
            continue
        parts = [p for p in rel.strip().split("/") if p and p != ".."]
        for d in (base.joinpath(*parts[:k]) for k in range(len(parts) + 1)):
            if (limit := _number(d / limit_name) or _NO_LIMIT) < _NO_LIMIT:
                cache = _number(d / "memory.stat", "inactive_file") or 0  # dropped first
                left.append(limit - max(0, (_number(d / usage_name) or 0) - cache))
    return min(left, default=None)
