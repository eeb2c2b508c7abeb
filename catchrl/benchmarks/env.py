"""``catchrl bench env``: steps/s, wall and CPU time of CatchEnv, CatchVectorEnv and gymnax's Catch.

Seeded random actions, a tenth of each case untimed first; a step of N games counts N steps.
"""

from __future__ import annotations

import itertools
import os
import platform
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from catchrl.envs import OBS_TYPES, CatchEnv, CatchVectorEnv

SCAN_STEPS = 64  # steps of every game per jitted gymnax call


def _clocked(run: Callable[[], int], seconds: float) -> tuple[float, float, int]:
    """Call ``run()`` (it returns the env steps it made) for ``seconds``: (wall, cpu, steps)."""
    warm_end = time.perf_counter() + seconds / 10
    while run() and time.perf_counter() < warm_end:
        pass
    wall0, cpu0 = time.perf_counter(), time.process_time()
    steps = run()
    while time.perf_counter() < wall0 + seconds:
        steps += run()
    return time.perf_counter() - wall0, time.process_time() - cpu0, steps


def _single(env: Any, seed: int) -> Callable[[], int]:
    actions = np.random.default_rng(seed).integers(0, 3, size=256).tolist()
    env.reset(seed=seed)

    def run() -> int:
        for a in actions:
            if env.step(a)[2]:
                env.reset()
        return len(actions)

    return run


def _vector(num_envs: int, obs_type: str, copy: bool, seed: int = 0) -> Callable[[], int]:
    env = CatchVectorEnv(num_envs, obs_type, copy=copy)
    env.reset(seed=seed)
    actions = itertools.cycle(np.random.default_rng(seed).integers(0, 3, size=(64, num_envs)))

    def run() -> int:
        env.step(next(actions))
        return num_envs

    return run


def gymnax_missing() -> str | None:
    """Why gymnax's rows cannot run here; ``None`` where gymnax and jax import."""
    try:
        import gymnax  # noqa: F401
        import jax  # noqa: F401
    except ImportError as e:
        return f"gymnax rows skipped: {e} (pip install gymnax 'jax[cpu]')"
    return None


def _gymnax_rollout(n: int, seed: int) -> Callable[[], int]:
    """Gymnax's Catch-bsuite: ``n`` games, ``SCAN_STEPS`` steps per jitted ``lax.scan``."""
    import gymnax
    import jax

    env, params = gymnax.make("Catch-bsuite")
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))  # autoresets finished games
    actions = jax.numpy.asarray(np.random.default_rng(seed).integers(0, 3, (SCAN_STEPS, n)))

    def one(carry: tuple[Any, Any], action: Any) -> tuple[tuple[Any, Any], Any]:
        key, sub = jax.random.split(carry[0])
        obs, state, reward, done, *_ = step(jax.random.split(sub, n), carry[1], action, params)
        return (key, state), (obs, reward, done)  # returned: XLA cannot skip the frames

    rollout = jax.jit(lambda carry: jax.lax.scan(one, carry, actions))
    key, sub = jax.random.split(jax.random.PRNGKey(seed))
    carry = [(key, jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(sub, n), params)[1])]

    def run() -> int:
        carry[0], out = rollout(carry[0])
        jax.block_until_ready(out)
        return n * SCAN_STEPS

    return run


def run_env_benchmark(
    seconds_per_case: float = 2.0,
    batch_sizes: Sequence[int] = (1, 64, 256, 1024),
    gymnax: bool = True,
) -> list[dict[str, Any]]:
    """A row per case: steps, seconds, rates and ``x_gymnax`` (None: no gymnax row at N)."""
    cases = [(f"CatchEnv {o}", 1, partial(_single, CatchEnv(o), 0)) for o in OBS_TYPES]
    for n in batch_sizes:
        for obs, copy in (("pixels", True), ("pixels", False), ("state", False), ("grid", False)):
            label = f"CatchVectorEnv {obs}" + (", copy=True" if copy else "")
            cases.append((label, int(n), partial(_vector, int(n), obs, copy)))
    if gymnax and gymnax_missing() is None:
        rollout = f"gymnax Catch-bsuite (grid): jit(scan(vmap(step))), {SCAN_STEPS} steps a call"
        cases += [(rollout, int(n), partial(_gymnax_rollout, int(n), 0)) for n in batch_sizes]
    rows = []
    for case, n, make in cases:
        wall, cpu, steps = _clocked(make(), seconds_per_case)
        row = {"case": case, "envs": n, "steps": steps, "seconds": wall, "cpu_seconds": cpu}
        rows.append(row | {"steps_per_s": steps / wall, "cpu_steps_per_s": steps / max(cpu, 1e-9)})
    competitor = {r["envs"]: r["cpu_steps_per_s"] for r in rows if r["case"].startswith("gymnax")}
    for r in rows:
        rate = competitor.get(r["envs"])
        r["x_gymnax"] = r["cpu_steps_per_s"] / rate if rate else None
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table under a line naming the machine."""
    machine = f"Python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs"
    head = "| case | games | steps/s (CPU) | x gymnax (CPU) | steps/s (wall) | CPU s | wall s |"
    lines = [f"{machine} ({platform.machine()})", "", head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = "–" if r["x_gymnax"] is None else f"{r['x_gymnax']:,.2f}"
        rates = f"{r['cpu_steps_per_s']:,.0f} | {ratio} | {r['steps_per_s']:,.0f}"
        times = f"{r['cpu_seconds']:.2f} | {r['seconds']:.2f}"
        lines.append(f"| {r['case']} | {r['envs']:,} | {rates} | {times} |")
    return "\n".join(lines)
