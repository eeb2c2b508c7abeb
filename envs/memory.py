"""How much memory this process can still get, from the operating system (stdlib only).

Used to refuse, with a clear message, an env (or a replay memory, or a run)
that could not fit, before allocating it: a server should see a ``ValueError``
naming the setting to lower, not a process killed by the kernel.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["available_memory_bytes", "format_gb"]

_NO_LIMIT = 1 << 60  # cgroup files say "max" or a huge number where nothing is limited


def available_memory_bytes() -> int:
    """Bytes of memory that can still be allocated without swapping, as the kernel sees it.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (free memory plus caches the
    kernel can drop), lowered to the headroom of the process's cgroup where a
    memory limit is set (a container's limit, which the OOM killer enforces
    though ``MemAvailable`` shows the whole host's memory). Elsewhere: the
    available physical pages from ``os.sysconf`` (``SC_AVPHYS_PAGES``, else
    all physical pages). ``0`` if nothing can be read.
    """
    free = _meminfo_available()
    if free is None:
        free = _sysconf_pages()
    headroom = _cgroup_headroom(Path("/proc/self/cgroup"), Path("/sys/fs/cgroup"))
    return max(0, min(free, headroom) if headroom is not None else free)


def format_gb(n_bytes: int) -> str:
    """``n_bytes`` in decimal gigabytes, one decimal (``"52.0 GB"``; ``"0.002 GB"`` if small)."""
    gb = n_bytes / 1e9
    return f"{gb:.1f} GB" if gb >= 0.1 else f"{gb:.3g} GB"


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_pages() -> int:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0
    for name in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            pages = os.sysconf(name)
        except (ValueError, OSError, AttributeError):
            continue
        if pages > 0:
            return pages * page
    return 0


def _read_int(path: Path) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return _NO_LIMIT
    try:
        return int(text)
    except ValueError:
        return None


def _inactive_file(stat: Path) -> int:
    """Page cache the kernel drops first (``inactive_file`` of ``memory.stat``), else 0."""
    try:
        for line in stat.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key in ("inactive_file", "total_inactive_file"):
                return int(value)
    except (OSError, ValueError):
        return 0
    return 0


def _cgroup_headroom(proc_cgroup: Path, root: Path) -> int | None:
    """The smallest ``limit - working set`` over the process's cgroup and its parents, if limited.

    The working set is usage less inactive page cache, as container runtimes
    count it. cgroup v2 (``memory.max``) and v1 (``memory.limit_in_bytes``).
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    unified = root / "unified"  # v2 beside v1 ("hybrid") lives there
    v2_root = unified if unified.is_dir() else root
    dirs: list[tuple[Path, str, str]] = []  # (cgroup dir, limit file, usage file)
    for line in lines:
        _, controllers, rel = [*line.split(":", 2), "", ""][:3]
        if controllers == "":  # v2: "0::/path"
            dirs += [(d, "memory.max", "memory.current") for d in _ancestors(v2_root, rel)]
        elif "memory" in controllers.split(","):  # v1: "4:memory:/path"
            names = ("memory.limit_in_bytes", "memory.usage_in_bytes")
            dirs += [(d, *names) for d in _ancestors(root / "memory", rel)]
    best: int | None = None
    for d, limit_name, usage_name in dirs:
        limit = _read_int(d / limit_name)
        if limit is None or limit >= _NO_LIMIT:
            continue
        usage = _read_int(d / usage_name) or 0
        left = limit - max(0, usage - _inactive_file(d / "memory.stat"))
        best = left if best is None else min(best, left)
    return best


def _ancestors(base: Path, rel: str) -> list[Path]:
    """``base / rel`` and each of its parents up to ``base`` (a container sees its own as "/")."""
    parts = [p for p in rel.strip().split("/") if p and p != ".."]
    return [base.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]
