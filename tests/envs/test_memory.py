"""available_memory_bytes: /proc/meminfo, the sysconf fallback, cgroup limits (on planted files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import catchrl.envs.sizing as memory
from catchrl.envs import available_memory_bytes


def test_available_memory_is_a_plausible_positive_int():
    free = available_memory_bytes()
    assert isinstance(free, int) and free > 0
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert free <= total


def test_meminfo_available_is_read_in_bytes_and_the_free_pages_without_it(tmp_path, monkeypatch):
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       24683584 kB\nMemFree: 1 kB\nMemAvailable:   2048 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", info)
    monkeypatch.setattr(memory, "_cgroup_headroom", lambda *_: None)
    assert available_memory_bytes() == 2048 * 1024
    info.write_text("MemTotal: 5 kB\n")  # an old kernel without MemAvailable
    expected = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert abs(available_memory_bytes() - expected) < 1 << 30  # free pages move a little
    monkeypatch.setattr(os, "sysconf_names", {})  # no way to know (macOS): nothing refused
    assert available_memory_bytes() >= 1 << 60


def test_a_cgroup_limit_lowers_the_answer(tmp_path, monkeypatch):
    (tmp_path / "meminfo").write_text(f"MemAvailable: {64 << 20} kB\n")
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(memory, "_cgroup_headroom", lambda *_: 3 << 30)
    assert available_memory_bytes() == 3 << 30
    monkeypatch.setattr(memory, "_cgroup_headroom", lambda *_: None)
    assert available_memory_bytes() == 64 << 30


def plant(root: Path, rel: str, files: dict[str, str]) -> None:
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)


def test_cgroup_v2_headroom_is_the_tightest_limit_less_the_working_set(tmp_path):
    root, proc = tmp_path / "cgroup", tmp_path / "proc_cgroup"
    proc.write_text("0::/jobs/run7\n")
    plant(root, "", {"memory.max": "max"})
    plant(root, "jobs", {"memory.max": str(10 << 30), "memory.current": str(4 << 30)})
    plant(
        root,
        "jobs/run7",
        {
            "memory.max": str(8 << 30),
            "memory.current": str(7 << 30),
            "memory.stat": f"anon 1\ninactive_file {2 << 30}\n",  # cache the kernel drops first
        },
    )
    assert memory._cgroup_headroom(proc, root) == (8 << 30) - (5 << 30)


def test_cgroup_v1_and_no_limit(tmp_path):
    root, proc = tmp_path / "cgroup", tmp_path / "proc_cgroup"
    proc.write_text("5:cpu,cpuacct:/x\n4:memory:/box\n0::/\n")
    plant(root, "memory", {"memory.limit_in_bytes": str(2**63 - 4096)})  # unlimited
    plant(
        root,
        "memory/box",
        {"memory.limit_in_bytes": str(6 << 30), "memory.usage_in_bytes": str(1 << 30)},
    )
    assert memory._cgroup_headroom(proc, root) == 5 << 30
    proc.write_text("0::/\n")
    assert memory._cgroup_headroom(proc, root) is None
    assert memory._cgroup_headroom(tmp_path / "absent", root) is None


@pytest.mark.parametrize(
    ("n", "text"), [(52_000_000_000, "52.0 GB"), (2_000_000, "0.002 GB"), (0, "0 GB")]
)
def test_format_gb(n, text):
    assert memory.format_gb(n) == text
