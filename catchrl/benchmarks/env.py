"""How many steps per second the Catch environments play, against the book's way.

``run_env_benchmark`` times, for a fixed number of seconds each: a single
:class:`~catchrl.envs.CatchEnv` (pixels, state, grid); the native
:class:`~catchrl.envs.CatchVectorEnv` at several batch sizes; gymnax's Catch where
``gymnax`` and ``jax`` are importable (a jitted step called from Python, and jitted
64-step ``lax.scan`` rollouts; else its rows are skipped, :func:`gymnax_missing`
says why); and :class:`BookPixelReference`, the book's way to a pixel observation.
Actions are uniformly random (seeded); finished games restart; each case first runs
briefly untimed. Throughput is on the wall clock and on this process's CPU time;
ratios are to the reference, on the same clock. Run ``catchrl bench env``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "BookPixelReference",
    "format_table",
    "gymnax_missing",
    "run_env_benchmark",
    "run_gymnax_benchmark",
]

_WARMUP_FRACTION = 0.1


class BookPixelReference:
    """The book's Catch with its pixel observation, written the book's way, headless.

    The book's game and preprocessing (``SEED_CATCH.md``), restated: each step fills
    a 400 x 400 pygame ``Surface``, draws the ball and paddle with ``pygame.draw.rect``,
    reads it through ``pygame.surfarray.pixels3d``, converts to grey (ITU-R 601 luma),
    area-averages 5 x 5 blocks to 80 x 80, scales to [0, 1] and appends it to the
    4-frame stack with ``np.append``; the book's 30 FPS clock is left out.

    Args:
        seed: Seed of the ball positions.

    """

    WIDTH = HEIGHT = 400
    BALL, PADDLE_W, PADDLE_H, PADDLE_Y = 20, 50, 10, 350
    SIZE, STACK = 80, 4

    def __init__(self, seed: int = 0) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame
        except ImportError as err:  # pragma: no cover - pygame is a dependency
            raise ImportError("the book reference needs pygame: pip install pygame") from err
        self._pg = pygame
        self.surface = pygame.Surface((self.WIDTH, self.HEIGHT))
        self.rng = random.Random(seed)
        self.ball_x = self.ball_y = self.paddle_x = 0
        self.stack = np.zeros((self.SIZE, self.SIZE, self.STACK))

    def reset(self) -> np.ndarray:
        """Start a game; the first frame fills the stack. Returns the stack ``(80, 80, 4)``."""
        self.ball_x, self.ball_y, self.paddle_x = self.rng.randint(0, self.WIDTH), 10, 200
        frame = self._frame()
        self.stack = np.stack((frame, frame, frame, frame), axis=2)
        return self.stack

    def step(self, action: int) -> tuple[np.ndarray, int, bool]:
        """One step: ``(stack, reward, game_over)``."""
        if action == 0:
            self.paddle_x -= 20
            if self.paddle_x < 0:
                self.paddle_x = 20
        elif action == 2:
            self.paddle_x += 20
            if self.paddle_x > self.WIDTH - self.PADDLE_W:
                self.paddle_x = self.WIDTH - self.PADDLE_W - 20
        self.ball_y += 10
        frame = self._frame()
        reward, game_over = 0, False
        if self.ball_y >= 340:
            game_over = True
            ball = self._pg.Rect(self.ball_x, self.ball_y, self.BALL, self.BALL)
            paddle = self._pg.Rect(self.paddle_x, self.PADDLE_Y, self.PADDLE_W, self.PADDLE_H)
            reward = 1 if ball.colliderect(paddle) else -1
        self.stack = np.append(self.stack[:, :, 1:], frame[:, :, np.newaxis], axis=2)
        return self.stack, reward, game_over

    def _frame(self) -> np.ndarray:
        pg, s = self._pg, self.surface
        s.fill((0, 0, 0))
        pg.draw.rect(s, (255, 255, 255), (self.ball_x, self.ball_y, self.BALL, self.BALL))
        pg.draw.rect(
            s, (255, 255, 255), (self.paddle_x, self.PADDLE_Y, self.PADDLE_W, self.PADDLE_H)
        )
        rgb = pg.surfarray.pixels3d(s)  # [x, y, 3], a view that locks the surface
        grey = (0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2]).T  # [y, x]
        del rgb  # unlock
        k = self.WIDTH // self.SIZE
        small = grey.reshape(self.SIZE, k, self.SIZE, k).mean(axis=(1, 3))
        return small / 255.0


# --- timing -------------------------------------------------------------------


def _clocked(run: Callable[[], int], seconds: float) -> tuple[float, float, int]:
    """Call ``run()`` (returns env steps done) until ``seconds`` pass: (wall, cpu, steps)."""
    run()
    warm_end = time.perf_counter() + seconds * _WARMUP_FRACTION
    while time.perf_counter() < warm_end:
        run()
    steps, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    end = wall0 + seconds
    while True:
        steps += run()
        now = time.perf_counter()
        if now >= end:
            return now - wall0, time.process_time() - cpu0, steps


def _single_runner(env: Any, chunk_steps: int, seed: int) -> Callable[[], int]:
    actions = np.random.default_rng(seed).integers(0, 3, size=4096).tolist()
    env.reset(seed=seed) if hasattr(env, "np_random") else env.reset()
    state = {"t": 0}

    def run() -> int:
        t, step, reset = state["t"], env.step, env.reset
        for _ in range(chunk_steps):
            out = step(actions[t])
            t = (t + 1) & 4095
            if out[2]:
                reset()
        state["t"] = t
        return chunk_steps

    return run


def _vector_runner(env: Any, seed: int) -> Callable[[], int]:
    n = env.num_envs
    actions = np.random.default_rng(seed).integers(0, 3, size=(64, n))
    env.reset(seed=seed)
    state = {"t": 0}

    def run() -> int:
        env.step(actions[state["t"]])
        state["t"] = (state["t"] + 1) & 63
        return n

    return run


def gymnax_missing() -> str | None:
    """Why gymnax's rows cannot run here (``None``: gymnax and jax import)."""
    try:
        import gymnax  # noqa: F401
        import jax  # noqa: F401
    except ImportError as e:
        return f"gymnax rows skipped: {e} (pip install gymnax 'jax[cpu]')"
    return None


def _gymnax_runners(n: int, seed: int, scan_steps: int = 64) -> dict[str, Callable[[], int]]:
    """Gymnax's Catch-bsuite over ``n`` games: a Python-loop runner and a scanned one."""
    import gymnax
    import jax
    import jax.numpy as jnp

    env, params = gymnax.make("Catch-bsuite")
    actions = jnp.asarray(np.random.default_rng(seed).integers(0, 3, size=(scan_steps, n)))
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    @jax.jit
    def step(key, state, a):  # one step of all games, as a vector env's step
        key, sub = jax.random.split(key)
        obs, state, reward, terminated, truncated, _ = vstep(
            jax.random.split(sub, n), state, a, params
        )  # gymnax >= 1.0 (Gymnasium's five values and its info)
        return key, state, obs, reward, terminated | truncated

    @jax.jit
    def rollout(key, state, obs):  # scan_steps steps of all games in one call
        def body(carry, a):
            key, state, _ = carry
            key, state, obs, reward, done = step(key, state, a)
            return (key, state, obs), (reward, done)

        (key, state, obs), flags = jax.lax.scan(body, (key, state, obs), actions)
        return key, state, obs, flags

    key, sub = jax.random.split(jax.random.PRNGKey(seed))
    obs, state = reset(jax.random.split(sub, n), params)
    box: dict[str, Any] = {"key": key, "state": state, "obs": obs, "t": 0}
    per_step = [actions[t] for t in range(scan_steps)]  # sliced once, not in the loop

    def loop() -> int:
        t = box["t"]
        box["key"], box["state"], box["obs"], _reward, done = step(
            box["key"], box["state"], per_step[t]
        )
        jax.block_until_ready(done)
        box["t"] = (t + 1) % scan_steps
        return n

    def scan() -> int:
        box["key"], box["state"], box["obs"], flags = rollout(box["key"], box["state"], box["obs"])
        jax.block_until_ready(flags)
        return n * scan_steps

    return {"loop": loop, "scan": scan}


def run_gymnax_benchmark(
    seconds_per_case: float = 2.0, batch_sizes: Sequence[int] = (1024,)
) -> list[dict[str, Any]]:
    """Time gymnax's Catch-bsuite (jitted per step, and scanned); rows as :func:`run_env_benchmark`.

    Raises:
        ImportError: gymnax or jax is not installed (:func:`gymnax_missing`).

    """
    missing = gymnax_missing()
    if missing:
        raise ImportError(missing)
    rows = []
    for n in batch_sizes:
        runners = _gymnax_runners(int(n), 0)
        for how, label in (
            ("loop", "jit(vmap(step)) called per step"),
            ("scan", "jit(scan(vmap(step))), 64 steps per call"),
        ):
            clocked = _clocked(runners[how], seconds_per_case)
            rows.append(_row(f"gymnax Catch-bsuite {label}", "gymnax", "grid", int(n), *clocked))
    return rows


def _row(
    case: str, api: str, obs: str, envs: int, wall: float, cpu: float, steps: int
) -> dict[str, Any]:
    return {
        "case": case,
        "api": api,
        "obs": obs,
        "envs": envs,
        "steps": steps,
        "seconds": wall,
        "steps_per_s": steps / wall,
        "cpu_steps_per_s": steps / cpu if cpu > 0 else float("nan"),
    }


def run_env_benchmark(
    seconds_per_case: float = 2.0,
    batch_sizes: Sequence[int] = (1, 64, 256, 1024),
    gymnax: bool = True,
) -> list[dict[str, Any]]:
    """Time the environments and the book reference; one dict per case.

    Args:
        seconds_per_case: Timed seconds per case (after a warm-up of a tenth of that).
        batch_sizes: Numbers of games for the vector env (and gymnax) cases.
        gymnax: Add gymnax's rows (:func:`run_gymnax_benchmark`) where it is
            installed; :func:`gymnax_missing` says why they are not.

    Returns:
        Rows with ``case``, ``api``, ``obs``, ``envs``, ``steps``, ``seconds``,
        ``steps_per_s`` (env steps per wall-clock second: a vector step of N
        games counts N), ``cpu_steps_per_s`` (per second of this process's CPU
        time), and ``x_reference`` / ``cpu_x_reference``: the same over the
        reference's. The reference row comes first.

    """
    from catchrl.envs import CatchEnv, CatchVectorEnv

    seconds = float(seconds_per_case)
    if seconds <= 0:
        raise ValueError(f"seconds_per_case must be > 0, got {seconds_per_case!r}")
    rows = []
    ref = BookPixelReference(seed=0)
    rows.append(
        _row(
            "book reference: pygame 400x400 -> grey 80x80 float, np.append stack",
            "BookPixelReference",
            "pixels",
            1,
            *_clocked(_single_runner(ref, 16, 0), seconds),
        )
    )
    for obs in ("pixels", "state", "grid"):
        env = CatchEnv(obs)
        rows.append(
            _row(
                f"CatchEnv {obs}",
                "CatchEnv",
                obs,
                1,
                *_clocked(_single_runner(env, 256, 0), seconds),
            )
        )
        env.close()
    for n in batch_sizes:
        cases = (
            ("pixels", True),
            ("pixels", False),
            ("state", True),
            ("grid", True),
            ("grid", False),
        )
        for obs, copy in cases:
            label = {True: "copy=True (fresh array)", False: "copy=False (env buffer)"}[copy]
            env = CatchVectorEnv(int(n), obs_type=obs, copy=copy)
            rows.append(
                _row(
                    f"CatchVectorEnv {obs} {label}",
                    "CatchVectorEnv",
                    obs,
                    int(n),
                    *_clocked(_vector_runner(env, 0), seconds),
                )
            )
            env.close()
    if gymnax and gymnax_missing() is None:
        rows.extend(run_gymnax_benchmark(seconds, batch_sizes))
    base, cpu_base = rows[0]["steps_per_s"], rows[0]["cpu_steps_per_s"]
    for r in rows:
        r["x_reference"] = r["steps_per_s"] / base
        r["cpu_x_reference"] = r["cpu_steps_per_s"] / cpu_base
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`run_env_benchmark` as a Markdown table."""
    head = (
        "| case | envs | steps/s (wall) | x reference | steps/s (CPU) | x reference (CPU) |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['envs']} | {r['steps_per_s']:,.0f} | "
            f"{r['x_reference']:,.1f} | {r['cpu_steps_per_s']:,.0f} | "
            f"{r['cpu_x_reference']:,.1f} |"
        )
    return "\n".join(lines)


def machine_line() -> str:
    """Python, numpy and CPU count, for the record."""
    return (
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs ({platform.machine()}), {platform.system()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m catchrl.benchmarks.env``: print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m catchrl.benchmarks.env", description="Time the Catch environments."
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per case")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[1, 64, 256, 1024], help="vector env sizes"
    )
    args = parser.parse_args(argv)
    rows = run_env_benchmark(args.seconds, tuple(args.batch_sizes))
    print(machine_line())
    print(format_table(rows))
    if gymnax_missing():
        print(f"\n{gymnax_missing()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
