"""``catchrl bench env``: env steps per second, wall clock and CPU time (all threads).

Cases: the book's pixel pipeline (the baseline), ``CatchEnv`` and ``CatchVectorEnv`` per
observation type, gymnax's Catch where it imports; seeded random actions, a tenth of each
case's time untimed first; a step of N games counts N steps.
"""

from __future__ import annotations

import itertools
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

__all__ = ["BookPixelReference", "format_table", "gymnax_missing", "run_env_benchmark"]

SCAN_STEPS = 64  # steps of every game per jitted gymnax call


class BookPixelReference:
    """The book's Catch and pixel pipeline, without its window and 30 FPS clock.

    pygame draws 400 x 400; grey (ITU-R 601); 5 x 5 block means to 80 x 80; ``np.append``.
    """

    WIDTH, BALL, PADDLE_W, PADDLE_H, PADDLE_Y, SIZE = 400, 20, 50, 10, 350, 80

    def __init__(self, seed: int = 0) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        self._pg, self.rng = pygame, random.Random(seed)
        self.surface = pygame.Surface((self.WIDTH, self.WIDTH))
        self.reset()

    def reset(self, seed: int | None = None) -> np.ndarray:
        """A new game; its first frame fills the ``(80, 80, 4)`` stack."""
        if seed is not None:
            self.rng.seed(seed)
        self.ball_x, self.ball_y, self.paddle_x = self.rng.randint(0, self.WIDTH), 10, 200
        self.stack = np.stack([self._frame()] * 4, axis=2)
        return self.stack

    def step(self, action: int) -> tuple[np.ndarray, int, bool]:
        """One step: ``(stack, reward, game_over)``, with the book's bounce off the walls."""
        if action == 0:
            self.paddle_x = 20 if self.paddle_x - 20 < 0 else self.paddle_x - 20
        elif action == 2:
            right = self.WIDTH - self.PADDLE_W
            self.paddle_x = right - 20 if self.paddle_x + 20 > right else self.paddle_x + 20
        self.ball_y += 10
        frame, reward, game_over = self._frame(), 0, self.ball_y >= 340
        if game_over:
            ball = self._pg.Rect(self.ball_x, self.ball_y, self.BALL, self.BALL)
            paddle = self._pg.Rect(self.paddle_x, self.PADDLE_Y, self.PADDLE_W, self.PADDLE_H)
            reward = 1 if ball.colliderect(paddle) else -1
        self.stack = np.append(self.stack[:, :, 1:], frame[:, :, np.newaxis], axis=2)
        return self.stack, reward, game_over

    def _frame(self) -> np.ndarray:
        pg, s, white = self._pg, self.surface, (255, 255, 255)
        s.fill((0, 0, 0))
        pg.draw.rect(s, white, (self.ball_x, self.ball_y, self.BALL, self.BALL))
        pg.draw.rect(s, white, (self.paddle_x, self.PADDLE_Y, self.PADDLE_W, self.PADDLE_H))
        rgb = pg.surfarray.pixels3d(s)  # [x, y, 3], locks the surface until this returns
        grey = (0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2]).T
        k = self.WIDTH // self.SIZE
        return grey.reshape(self.SIZE, k, self.SIZE, k).mean(axis=(1, 3)) / 255.0


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


def _single(env: Any, seed: int, chunk: int = 256) -> Callable[[], int]:
    actions = np.random.default_rng(seed).integers(0, 3, size=chunk).tolist()
    env.reset(seed=seed)

    def run() -> int:
        for a in actions:
            if env.step(a)[2]:
                env.reset()
        return chunk

    return run


def _vector(num_envs: int, obs_type: str, copy: bool, seed: int = 0) -> Callable[[], int]:
    from catchrl.envs import CatchVectorEnv

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
    """A row per case (the book's reference first): steps, seconds, rates and ``x_reference``."""
    from catchrl.envs import CatchEnv

    book = "book reference: pygame 400x400 -> grey 80x80, np.append stack"
    cases = [(book, 1, partial(_single, BookPixelReference(), 0, 16))]
    cases += [
        (f"CatchEnv {o}", 1, partial(_single, CatchEnv(o), 0)) for o in ("pixels", "state", "grid")
    ]
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
        rows.append({"case": case, "envs": n, "steps": steps, "seconds": wall, "cpu_seconds": cpu})
    for r in rows:
        r["steps_per_s"] = r["steps"] / r["seconds"]
        r["cpu_steps_per_s"] = r["steps"] / max(r["cpu_seconds"], 1e-9)
        r["x_reference"] = r["steps_per_s"] / rows[0]["steps_per_s"]
        r["cpu_x_reference"] = r["cpu_steps_per_s"] / rows[0]["cpu_steps_per_s"]
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table under a line naming the machine."""
    machine = (
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs ({platform.machine()})"
    )
    lines = [
        machine,
        "",
        "| case | games | steps/s (CPU) | x book | steps/s (wall) | x book | CPU s | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = f"{r['cpu_steps_per_s']:,.0f} | {r['cpu_x_reference']:,.1f}"
        wall = f"{r['steps_per_s']:,.0f} | {r['x_reference']:,.1f}"
        times = f"{r['cpu_seconds']:.2f} | {r['seconds']:.2f}"
        lines.append(f"| {r['case']} | {r['envs']:,} | {cpu} | {wall} | {times} |")
    return "\n".join(lines)
