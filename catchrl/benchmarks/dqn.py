"""Benchmarks of the Keras DQN: learning speed, the book's curve, latency, replay memory.

Run ``python -m catchrl.benchmarks.dqn --part PART`` (or ``catchrl bench dqn``):

- ``target``: the preset trains (several seeds), evaluated on 1,000
  validation games every 32 games; prints env steps, training seconds and
  training CPU seconds until the model wins 99 % of 10,000 *test* games
  (evaluation time excluded), the lowest validation score while it trains on
  to 5x those steps, and its kept model (``best.keras``) on 10,000 test
  games; medians over seeds;
- ``book-games``: win rate after 1,000 / 2,000 / 5,000 training games (100 and
  1,000 evaluation games), side by side with the book's 42 / 74 / 87 of 100;
- ``book-preset``: the ``book`` preset for a wall-clock budget, its win rate
  every 100 games and its steps/s;
- ``latency``: greedy action latency for one observation (p50, p99) of the
  compiled function vs ``model.predict``;
- ``replay``: replay memory bytes per pixel transition vs the book's 409.6 KB;
- ``backends``: the preset's cost per env step (its gradient steps included) on
  each installed Keras backend (TensorFlow, JAX, torch), each in its own
  process: two runs per seed without evaluations, ``--backend-steps`` apart,
  and the difference of their training seconds and CPU seconds per step
  (start-up, compilation and the ``observe`` steps cancel); medians over
  seeds, with the ratio to TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BACKENDS",
    "BOOK_WINS",
    "bench_backends",
    "bench_latency",
    "bench_replay",
    "bench_target",
    "main",
]

BOOK_WINS = {1000: 42, 2000: 74, 5000: 87}
"""The book's greedy wins out of 100 games after N training games (SEED_CATCH.md)."""
BOOK_BYTES_PER_TRANSITION = 2 * 80 * 80 * 4 * 8  # two float64 (80, 80, 4) stacks = 409.6 KB


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = [" | ".join(c.ljust(width[c]) for c in cols), "-|-".join("-" * width[c] for c in cols)]
    lines += [" | ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def bench_replay() -> list[dict[str, Any]]:
    """Bytes per stored pixel transition, ours vs the book's two float64 stacks."""
    from catchrl.agents.replay import ReplayMemory

    capacity = 50_000
    mem = ReplayMemory(capacity, 8, (80, 80, 4), np.uint8, frame_stack=4)
    per = mem.nbytes / capacity
    return [
        {
            "memory": "catchrl ReplayMemory (pixels)",
            "bytes/transition": f"{per:,.0f}",
            "50,000 transitions": f"{mem.nbytes / 2**20:,.1f} MiB",
            "ratio": "1",
        },
        {
            "memory": "book (two float64 stacks)",
            "bytes/transition": f"{BOOK_BYTES_PER_TRANSITION:,}",
            "50,000 transitions": f"{capacity * BOOK_BYTES_PER_TRANSITION / 2**30:,.1f} GiB",
            "ratio": f"{BOOK_BYTES_PER_TRANSITION / per:,.0f}x more",
        },
    ]


def bench_latency(calls: int = 300) -> list[dict[str, Any]]:
    """Greedy action latency for one observation, compiled vs ``model.predict``."""
    from catchrl.agents.dqn import DQNAgent, DQNConfig
    from catchrl.agents.networks import build_q_network

    rows = []
    for kind in ("book", "small"):
        model = build_q_network(kind, (80, 80, 4), 3)
        agent = DQNAgent(model, DQNConfig(), seed=0)
        obs = np.random.default_rng(0).integers(0, 256, (1, 80, 80, 4), dtype=np.uint8)
        for _ in range(5):
            agent.act(obs, 0.0)
            model.predict(obs, verbose=0)
        ours = []
        for _ in range(calls):
            t = time.perf_counter()
            agent.act(obs, 0.0)
            ours.append(time.perf_counter() - t)
        theirs = []
        for _ in range(max(20, calls // 10)):
            t = time.perf_counter()
            model.predict(obs, verbose=0)
            theirs.append(time.perf_counter() - t)
        p = lambda xs, q: 1000 * float(np.percentile(xs, q))  # noqa: E731
        rows.append(
            {
                "network": kind,
                "act p50 ms": f"{p(ours, 50):.2f}",
                "act p99 ms": f"{p(ours, 99):.2f}",
                "predict p50 ms": f"{p(theirs, 50):.2f}",
                "predict p99 ms": f"{p(theirs, 99):.2f}",
                "speed-up (p50)": f"{p(theirs, 50) / p(ours, 50):.0f}x",
            }
        )
    return rows


def _train(
    preset: str, seed: int, overrides: list[str], run_dir: Path, test_games: int = 0
) -> dict[str, Any]:
    """One run; with ``test_games``, each evaluation's model also plays that many test games."""
    from catchrl.config import load_config
    from catchrl.evaluation import TEST_SEED
    from catchrl.learners import open_run

    cfg = load_config(preset, None, [f"run.seed={seed}", *overrides])
    t0 = time.perf_counter()
    tests: list[int] = []

    def on_eval(record: dict[str, Any]) -> None:
        tests.append(trainer.evaluate(test_games, seed=TEST_SEED).wins)

    trainer = open_run(cfg, run_dir, progress=False, on_evaluation=on_eval if test_games else None)
    result = trainer.run()
    evals = [{**e, "test_wins": w} for e, w in zip(result.evaluations, tests, strict=False)]
    evals = evals if test_games else result.evaluations
    return {
        "seed": seed,
        "evaluations": evals,
        "steps": result.steps,
        "games": result.games,
        "train_s": result.wall_time,
        "total_s": time.perf_counter() - t0,
        "steps_per_s": result.steps / max(result.wall_time, 1e-9),
        "final": result.final_eval.to_dict() if result.final_eval else None,
    }


def _first(evals: list[dict[str, Any]], level: float) -> dict[str, Any] | None:
    return next((e for e in evals if e["win_rate"] >= level), None)


def _reach_and_hold(
    preset: str,
    seed: int,
    overrides: list[str],
    run_dir: Path,
    target: float,
    test_games: int,
    hold: float,
) -> dict[str, Any]:
    """Train until the test win rate reaches ``target``, then on to ``hold`` x those steps.

    At each training-time (validation) evaluation the model is also played on
    1,000 test games; when those reach ``target`` it is played on
    ``test_games`` test games, and the first evaluation where that holds is
    the reach. Test games decide nothing in the run (only when the measurement
    ends); the kept model (``best.keras``, picked on validation) is then scored
    on ``test_games`` test games.
    """
    from catchrl.config import load_config
    from catchrl.evaluation import TEST_SEED, evaluate
    from catchrl.learners import open_run
    from catchrl.policies import load_policy

    cfg = load_config(preset, None, [f"run.seed={seed}", *overrides])
    loop: Any = None
    reach: dict[str, Any] = {}
    tests: list[float | None] = []

    def on_eval(record: dict[str, Any]) -> bool:
        if not reach:
            rate = loop.evaluate(1000, seed=TEST_SEED).win_rate
            if rate >= target:
                rate = loop.evaluate(test_games, seed=TEST_SEED).win_rate
                if rate >= target:
                    reach.update(record, test_win_rate=rate)
            tests.append(rate)
        else:
            tests.append(None)
        return bool(reach) and record["steps"] >= hold * reach["steps"]

    loop = open_run(cfg, run_dir, progress=False, on_evaluation=on_eval)
    result = loop.run()
    kept = load_policy(str(run_dir), allow_sb3=False)
    kept_eval = evaluate(kept.policy, games=test_games, seed=TEST_SEED, **kept.env_kwargs)
    after = [e["win_rate"] for e in result.evaluations if reach and e["steps"] > reach["steps"]]
    return {
        "seed": seed,
        "evaluations": [
            {**e, "test_win_rate": t} for e, t in zip(result.evaluations, tests, strict=True)
        ],
        "reach": reach or None,
        "min_validation_after": min(after) if after else None,
        "steps": result.steps,
        "train_s": result.wall_time,
        "kept": kept.source,
        "kept_test_win_rate": kept_eval.win_rate,
    }


def target_overrides(
    max_steps: int, eval_every: int, eval_games: int, overrides: Sequence[str] = ()
) -> list[str]:
    """The settings a ``target`` run trains with: the benchmark's, then ``overrides``."""
    return [
        f"run.total_steps={max_steps}",
        "run.total_games=0",
        f"run.eval_every={eval_every}",
        f"run.eval_games={eval_games}",
        "run.target_win_rate=0",
        "run.checkpoint_every=0",
        *overrides,
    ]


def bench_target(
    preset: str = "fast",
    seeds: tuple[int, ...] = (0, 1, 2),
    eval_every: int = 32,
    eval_games: int = 1000,
    max_steps: int = 50_000,
    out: Path | None = None,
    target: float = 0.99,
    test_games: int = 10_000,
    hold: float = 5.0,
    overrides: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Steps, training seconds and CPU seconds to ``target`` on the test games; then held.

    Each seed trains with evaluations on ``eval_games`` validation games every
    ``eval_every`` games (the run's own decisions: no early stop here), until
    the model scores ``target`` on ``test_games`` test games, and on to ``hold``
    times those steps (or ``max_steps``): the lowest validation score after the
    reach says whether learning holds. Last, the kept model on the test games.
    ``overrides`` (``TABLE.KEY=VALUE``) change the preset after the benchmark's
    own settings (:func:`target_overrides`), as ``catchrl train --set`` does.
    """
    settings = target_overrides(max_steps, eval_every, eval_games, overrides)
    rows, runs = [], []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            run = _reach_and_hold(
                preset, seed, settings, Path(tmp) / "run", target, test_games, hold
            )
        runs.append({**run, "overrides": list(overrides)})
        hit = run["reach"]
        low = run["min_validation_after"]
        rows.append(
            {
                "preset": preset,
                "seed": seed,
                f"steps to {100 * target:g}%": hit["steps"] if hit else "not reached",
                "training s": f"{hit['wall_time']:.1f}" if hit else "-",
                "training CPU s": f"{hit['train_cpu_s']:.1f}" if hit else "-",
                "test win rate there": f"{100 * hit['test_win_rate']:.2f}%" if hit else "-",
                f"lowest validation to {hold:g}x": "-" if low is None else f"{100 * low:.1f}%",
                "steps run": run["steps"],
                f"kept model on {test_games:,} test games": (
                    f"{100 * run['kept_test_win_rate']:.2f}%"
                ),
            }
        )
    med: dict[str, Any] = {"preset": preset, "seed": "median"}
    for key in rows[0]:
        if key in med:
            continue
        values = [_number(r[key]) for r in rows]
        known = [v for v in values if v is not None]
        med[key] = f"{statistics.median(known):g}" if len(known) == len(values) else "-"
    rows.append(med)
    if out:
        out.write_text(json.dumps(runs, indent=1))
    return rows


def _number(text: Any) -> float | None:
    """A table cell as a number (``"99.5%"`` -> 99.5), None if it is not one."""
    try:
        return float(str(text).rstrip("%"))
    except ValueError:
        return None


def bench_book_games(
    preset: str = "fast", seed: int = 0, checkpoints: tuple[int, ...] = (1000, 2000, 5000)
) -> list[dict[str, Any]]:
    """Greedy wins after N training games, next to the book's 42 / 74 / 87 of 100."""
    from catchrl.config import load_config
    from catchrl.evaluation import evaluate
    from catchrl.learners import open_run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            preset,
            None,
            [
                f"run.seed={seed}",
                "run.total_steps=0",
                f"run.total_games={checkpoints[0]}",
                "run.eval_games=0",
                "run.eval_every=0",
                "run.target_win_rate=0",
                "run.checkpoint_every=0",
            ],
        )
        trainer = open_run(cfg, Path(tmp) / "run", progress=False)
        for i, games in enumerate(checkpoints):
            if i:
                trainer = open_run(
                    None,
                    Path(tmp) / "run",
                    resume=True,
                    progress=False,
                    resume_overrides=[f"run.total_games={games}"],
                )
            result = trainer.run()
            env_kwargs = trainer.cfg.env.game_kwargs()
            e100 = evaluate(trainer.learner.greedy_policy, games=100, **env_kwargs)
            e1000 = evaluate(trainer.learner.greedy_policy, games=1000, **env_kwargs)
            rows.append(
                {
                    "training games": games,
                    "book (of 100)": BOOK_WINS.get(games, "-"),
                    "catchrl (of 100)": e100.wins,
                    "catchrl (of 1000)": e1000.wins,
                    "env steps": result.steps,
                    "training s": f"{result.wall_time:.0f}",
                }
            )
    return rows


def bench_book_preset(seconds: float = 900.0, seed: int = 0) -> list[dict[str, Any]]:
    """The ``book`` preset for a wall-clock budget: greedy wins of 100 every 100 games.

    The wins are counted on 100 test games (and, as the run itself does, on 100
    validation games), next to the book's 42 / 74 / 87 at 1,000 / 2,000 / 5,000 games.
    """
    with tempfile.TemporaryDirectory() as tmp:
        run = _train(
            "book",
            seed,
            [
                f"run.time_limit_s={seconds}",
                "run.total_games=0",
                "run.eval_every=100",
                "run.eval_games=100",
                "run.checkpoint_every=0",
            ],
            Path(tmp) / "run",
            test_games=100,
        )
    rows = [
        {
            "training games": e["games"],
            "env steps": e["steps"],
            "training s": f"{e['wall_time']:.0f}",
            "book (of 100)": BOOK_WINS.get(e["games"], "-"),
            "test wins of 100": e["test_wins"],
            "validation wins of 100": e["wins"],
        }
        for e in run["evaluations"]
    ]
    rows.append(
        {
            "training games": run["games"],
            "env steps": run["steps"],
            "training s": f"{run['train_s']:.0f}",
            "book (of 100)": "-",
            "test wins of 100": f"steps/s {run['steps_per_s']:.1f}",
            "validation wins of 100": "-",
        }
    )
    return rows


BACKENDS = ("tensorflow", "jax", "torch")
"""Keras' backends (``run.backend``): TensorFlow is installed by the ``keras`` extra,
JAX and torch are measured where they are installed."""


def _backend_run(backend: str, preset: str, seed: int, steps: int) -> dict[str, float]:
    """One run without evaluations in a fresh process (Keras picks its backend at import)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-m", "catchrl.benchmarks.dqn", "--backend-worker", backend]
    argv += ["--preset", preset, "--seeds", str(seed), "--max-steps", str(steps)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench backends: {backend} failed:\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _backend_worker(backend: str, preset: str, seed: int, steps: int) -> None:
    """Inside :func:`_backend_run`'s process: train, print training and CPU seconds."""
    overrides = [f"run.backend={backend!r}", f"run.total_steps={steps}", "run.eval_every=0"]
    overrides += ["run.eval_games=0", "run.target_win_rate=0"]
    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        run = _train(preset, seed, overrides, Path(tmp) / "run")
        cpu = time.process_time() - cpu
    print("RESULT " + json.dumps({"steps": run["steps"], "train_s": run["train_s"], "cpu_s": cpu}))


def bench_backends(
    preset: str = "fast",
    seeds: tuple[int, ...] = (0, 1, 2),
    steps: int = 6_000,
    backends: tuple[str, ...] = BACKENDS,
) -> list[dict[str, Any]]:
    """Milliseconds (wall and CPU) per env step of the preset on each Keras backend.

    Per seed and backend, two runs: ``observe + 1,000`` steps and ``steps``
    more; their difference divided by the extra steps is the cost of a step
    while learning. Backends that are not installed get a row saying so.
    """
    from catchrl.config import load_config

    short = load_config(preset, None, []).agent.observe + 1_000
    rows: list[dict[str, Any]] = []
    base: tuple[float, float] | None = None
    for backend in backends:
        if importlib.util.find_spec(backend) is None:
            rows.append({"backend": backend, "ms/step": f"not installed (pip install {backend})"})
            continue
        wall, cpu = [], []
        for seed in seeds:
            a = _backend_run(backend, preset, seed, short)
            b = _backend_run(backend, preset, seed, short + steps)
            n = b["steps"] - a["steps"]
            wall.append(1000 * (b["train_s"] - a["train_s"]) / n)
            cpu.append(1000 * (b["cpu_s"] - a["cpu_s"]) / n)
        w, c = statistics.median(wall), statistics.median(cpu)
        if backend == "tensorflow":
            base = (w, c)
        rows.append(
            {
                "backend": backend,
                "ms/step": f"{w:.2f}",
                "CPU ms/step": f"{c:.2f}",
                "steps/s": f"{1000 / w:,.0f}",
                "spread (ms/step)": f"{min(wall):.2f}-{max(wall):.2f}",
                "vs tensorflow (wall / CPU)": f"{w / base[0]:.2f}x / {c / base[1]:.2f}x"
                if base
                else "-",
            }
        )
    return [{k: r.get(k, "") for k in max(rows, key=len)} for r in rows]


PARTS = ("replay", "latency", "target", "book-games", "book-preset", "backends")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the chosen parts and print their tables."""
    p = argparse.ArgumentParser(
        prog="catchrl bench dqn",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--part",
        choices=PARTS,
        action="append",
        help="which benchmark (repeatable; default: replay and latency)",
    )
    p.add_argument("--preset", default="fast")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-steps", type=int, default=50_000)
    p.add_argument("--eval-every", type=int, default=32, help="games between evaluations")
    p.add_argument("--test-games", type=int, default=10_000, help="test games (target part)")
    p.add_argument("--hold", type=float, default=5.0, help="train on to HOLD x the steps")
    from catchrl.config import add_override_argument

    add_override_argument(
        p, "change the preset (target part; repeatable), as catchrl train --set does"
    )
    p.add_argument("--book-seconds", type=float, default=900.0)
    p.add_argument("--json", type=Path, help="also write the raw runs here (target part)")
    p.add_argument(
        "--backend-steps", type=int, default=6_000, help="extra steps per run (backends part)"
    )
    p.add_argument("--backend-worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.overrides:  # checked before any run starts, as the runs use them: exit 2
        from catchrl.config import ConfigError, load_config

        if args.part != ["target"]:
            p.error("--set changes the runs of --part target only")
        settings = target_overrides(args.max_steps, args.eval_every, 1000, args.overrides)
        try:
            load_config(args.preset, None, [f"run.seed={args.seeds[0]}", *settings])
        except ConfigError as e:
            p.exit(2, f"catchrl bench dqn: error: {e}\n")
    if args.backend_worker:
        _backend_worker(args.backend_worker, args.preset, args.seeds[0], args.max_steps)
        return 0
    for part in args.part or ["replay", "latency"]:
        t0 = time.perf_counter()
        if part == "replay":
            rows = bench_replay()
        elif part == "latency":
            rows = bench_latency()
        elif part == "target":
            rows = bench_target(
                args.preset,
                tuple(args.seeds),
                args.eval_every,
                max_steps=args.max_steps,
                out=args.json,
                test_games=args.test_games,
                hold=args.hold,
                overrides=tuple(args.overrides),
            )
        elif part == "backends":
            rows = bench_backends(args.preset, tuple(args.seeds), args.backend_steps)
        elif part == "book-games":
            rows = bench_book_games(args.preset, args.seeds[0])
        else:
            rows = bench_book_preset(args.book_seconds, args.seeds[0])
        print(f"\n## {part} ({time.perf_counter() - t0:.0f} s)\n")
        if part == "target" and args.overrides:
            print(f"--set {' --set '.join(args.overrides)}\n")
        print(_table(rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
