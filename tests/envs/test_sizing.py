"""Size limits and the memory estimate: refused at once, never allocated, a bit above the truth."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import catchrl.envs.sizing as sizing
from catchrl.envs import CatchEnv, CatchParams, CatchVectorEnv, estimate_env_bytes
from catchrl.envs.core import MAX_FRAME_SIZE, MAX_FRAME_STACK, MAX_WORLD_SIZE

# --- upper bounds, named in the error --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"width": 10**9}, "width"),
        ({"height": MAX_WORLD_SIZE + 1}, "height"),
        ({"frame_size": MAX_FRAME_SIZE + 1}, "frame_size"),
        ({"frame_size": 10**6}, "frame_size"),
        ({"frame_stack": MAX_FRAME_STACK + 1}, "frame_stack"),
        ({"paddle_speed": 10**30}, "paddle_speed"),
        ({"balls_per_game": 10**12}, "balls_per_game"),
    ],
)
@pytest.mark.parametrize("make", [CatchEnv, CatchVectorEnv, estimate_env_bytes])
def test_too_large_settings_are_refused_naming_the_parameter(make, kwargs, name):
    with pytest.raises(ValueError, match=name):
        make(**kwargs)


def test_the_bounds_themselves_are_allowed():
    assert CatchParams(width=MAX_WORLD_SIZE, height=MAX_WORLD_SIZE).width == MAX_WORLD_SIZE
    assert estimate_env_bytes(frame_size=MAX_FRAME_SIZE, frame_stack=MAX_FRAME_STACK) > 0
    assert CatchEnv("state", paddle_speed=400).params.paddle_speed == 400


@pytest.mark.parametrize("num_envs", [0, -3, 2.0, True, "8"])
def test_bad_num_envs_is_refused_by_the_estimate_as_by_the_env(num_envs):
    for make in (CatchVectorEnv, estimate_env_bytes):
        with pytest.raises(ValueError, match="num_envs"):
            make(num_envs)


def test_the_estimate_refuses_unknown_keywords_as_the_env_does():
    with pytest.raises(TypeError, match="paddle_sped"):
        estimate_env_bytes(4, paddle_sped=3)


def test_a_width_of_a_billion_is_refused_without_allocating():
    """In a fresh process, under an address-space limit so a regression fails, not the machine."""
    code = textwrap.dedent(
        """
        import resource, sys
        import catchrl.envs as envs

        def vm_bytes():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        room = vm_bytes() + (1 << 30)  # a 1 GiB margin: far below the 23 GB once allocated
        resource.setrlimit(resource.RLIMIT_AS, (room, resource.getrlimit(resource.RLIMIT_AS)[1]))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        for make in (envs.CatchEnv, envs.CatchVectorEnv):
            try:
                make(width=10**9)
            except ValueError as e:
                assert "width" in str(e), e
            else:
                sys.exit("not refused")
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grown)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert int(out.stdout.split()[-1]) * 1024 < 200 << 20  # maxrss grew by under 200 MB


# --- refused for memory, before allocating -----------------------------------------------------


def test_huge_num_envs_is_refused_naming_num_envs_before_allocating():
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"num_envs=1000000000 with frame_size=80") as err:
            CatchVectorEnv(10**9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert "GB available" in str(err.value) and "lower num_envs" in str(err.value)


def test_check_fits_is_the_one_refusal(monkeypatch):
    monkeypatch.setattr(sizing, "available_memory_bytes", lambda: 10**9)
    assert sizing.check_fits("Thing: size=3", 10**9, "size") == 10**9
    msg = r"^Thing: size=3 needs ~2.0 GB, more than the 1.0 GB available; lower size$"
    with pytest.raises(ValueError, match=msg):
        sizing.check_fits("Thing: size=3", 2 * 10**9, "size")


def test_the_check_uses_the_memory_available(monkeypatch):
    monkeypatch.setattr(sizing, "available_memory_bytes", lambda: 100_000_000)
    need = estimate_env_bytes(1024)
    assert need > 100_000_000
    msg = (
        rf"num_envs=1024 with frame_size=80, frame_stack=4 needs ~{need / 1e9:.1f} GB, "
        r"more than the 0.1 GB available"
    )
    with pytest.raises(ValueError, match=msg):
        CatchVectorEnv(1024)
    with pytest.raises(ValueError, match="obs_type='state'"):
        CatchVectorEnv(100_000, obs_type="state")
    with pytest.raises(ValueError, match=r"^CatchEnv: frame_size=1024, frame_stack=64 needs"):
        CatchEnv(frame_size=1024, frame_stack=64)
    CatchVectorEnv(64)  # 17 MB fits
    monkeypatch.setattr(sizing, "available_memory_bytes", lambda: 0)
    CatchVectorEnv(16, obs_type="state")  # below CHECK_FROM_BYTES: not checked at all


def test_the_estimate_allocates_nothing_even_for_huge_settings():
    kw = {"frame_size": 1024, "width": 10_000, "height": 10_000, "paddle_width": 4000}
    tracemalloc.start()
    try:
        need = estimate_env_bytes(10**9, **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert need > 10**9 * 1024 * 1024 * 4  # the frames alone
    assert peak < 1 << 20


# --- the estimate against what the env really allocates ---------------------------------------


def peak_bytes(num_envs: int, **kw) -> int:
    """tracemalloc's peak over building the env, a reset and 40 steps."""
    tracemalloc.start()
    try:
        env = CatchVectorEnv(num_envs, **kw)
        env.reset(seed=0)
        for t in range(40):
            env.step(np.full(num_envs, t % 3))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("num_envs", "kw"),
    [
        (256, {}),
        (64, {"frame_size": 40, "frame_stack": 2, "drift": 3}),
        (64, {"frame_stack": 8, "frame_size": 84, "autoreset_mode": "same_step"}),
        (256, {"obs_type": "state"}),
        (256, {"obs_type": "grid", "copy": False}),
    ],
)
def test_the_estimate_is_a_little_above_what_the_env_allocates(num_envs, kw):
    peak, need = peak_bytes(num_envs, **kw), estimate_env_bytes(num_envs, **kw)
    assert peak <= need <= 2 * peak, (need, peak)
