"""Supervised training throughput and time to the accuracy goals (``catchrl bench supervised``).

For every model asked for, in one process and on the same data:

- **trainer**: :func:`catchrl.supervised_train.train` into a temporary run
  directory (checkpoints, callbacks and all), its samples/s per epoch (training
  part only) and the training seconds (wall and CPU) until each accuracy goal
  is first met on held-out games (seeds ``1,000,000 ..``; the evaluation is
  not counted);
- **plain fit**: the same architecture, loss and optimizer with a plain
  ``model.compile`` (no XLA, one batch per call) and ``model.fit`` on the
  same training set as in-memory numpy arrays, same batch size.

samples/s is the median over epochs after the first (the first one traces
and compiles). The ratio ``plain / trainer`` is the trainer's overhead (< 1:
the trainer is faster). Wall-clock figures on a shared machine are noisy;
CPU seconds are printed beside them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CASES", "GOALS", "Case", "bench_case", "format_table", "main"]


@dataclass(frozen=True)
class Case:
    """One model to measure: its task, architecture, game and dataset kind."""

    task: str
    arch: str
    drift: int = 0
    kind: str = "frames"


CASES = {
    "perception-small": Case("perception", "small"),
    "perception-small-drift5": Case("perception", "small", drift=5),
    "perception-book": Case("perception", "book"),
    "perception-lenet": Case("perception", "lenet"),
    "imitation-small": Case("imitation", "small", kind="expert"),
    "sequence-gru-drift5": Case("sequence", "gru", drift=5, kind="trajectories"),
    "sequence-lstm-drift5": Case("sequence", "lstm", drift=5, kind="trajectories"),
}
DEFAULT_CASES = ("perception-small", "imitation-small", "sequence-gru-drift5")


def _perception_goals(m: dict[str, float]) -> dict[str, bool]:
    within = [v for k, v in m.items() if k.startswith("within_1px_") and k != "within_1px_ball_vx"]
    maes = [v for k, v in m.items() if k.startswith("mae_px_") and k != "mae_px_ball_vx"]
    return {"MAE < 0.5 px": max(maes) < 0.5, ">= 99 % within 1 px": min(within) >= 0.99}


GOALS: dict[str, Callable[[dict[str, float]], dict[str, bool]]] = {
    "perception": _perception_goals,
    "imitation": lambda m: {">= 95 % oracle actions": m["action_accuracy"] >= 0.95},
    "sequence": lambda m: {
        "landing MAE < 2 px": m["landing_mae_px"] < 2.0,
        "landing MAE <= 1 px": m["landing_mae_px"] <= 1.0,
    },
}
"""Per task: the goals, each a test of the figures of ``evaluate_model`` (supervised.evaluation).

Perception: every position output (the x-speed only on frames after a
game's first, which shows no motion)."""


@dataclass
class _GoalClock:
    """Training seconds (wall, CPU) summed over epochs, and when each goal was first met."""

    reached: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    cpu: float = 0.0


def _goal_callback(task: str, test: Any, n_train: int, clock: _GoalClock) -> Any:
    import keras

    from catchrl.supervised.evaluation import evaluate_model

    class GoalTimer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            clock.wall += n_train / max(float(logs.get("samples_per_s", 0.0)), 1e-9)
            clock.cpu += float(logs.get("train_cpu_s", 0.0))
            clock.last = evaluate_model(task, self.model, test)
            for goal, met in GOALS[task](clock.last).items():
                if met and goal not in clock.reached:
                    clock.reached[goal] = (epoch + 1, clock.wall, clock.cpu)

    return GoalTimer()


def _plain_fit(cfg: Any, ds: Any, batch: int, epochs: int) -> list[float]:
    """samples/s of each epoch of a plain ``model.fit`` on in-memory arrays."""
    import keras

    from catchrl.supervised.train import build_model, fit_arrays

    keras.utils.set_random_seed(cfg.seed)
    (x, y), _ = fit_arrays(cfg, ds)
    model = build_model(cfg, ds, compiled=False)
    n = len(x)
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
        rates.append(n / (time.perf_counter() - start))
    return rates


def bench_case(
    name: str,
    games: int,
    epochs: int,
    test_games: int = 30,
    plain_epochs: int = 3,
    batch_size: int = 0,
    seed: int = 0,
    work: Path | None = None,
) -> dict[str, Any]:
    """Measure one case (a key of :data:`CASES`): trainer vs plain fit, time to the goals.

    Args:
        name: The case.
        games: Training games (10 % held out for the trainer's validation).
        epochs: Trainer epochs (no early stop before them).
        test_games: Held-out games (seeds 1,000,000 ..) for the goals.
        plain_epochs: Epochs of the plain fit (the first is not counted).
        batch_size: 0: the trainer's automatic batch.
        seed: Seed of the data split, the shuffle and the weights.
        work: Folder for the data and the run (default: a temporary one).

    Returns:
        A row of figures (see :func:`format_table`).

    """
    from catchrl.envs import CatchParams
    from catchrl.supervised.datasets import load_dataset, make_dataset, save_dataset
    from catchrl.supervised.train import (
        CPU_BATCH,
        DATA_KINDS,
        SupervisedConfig,
        fit_arrays,
        setup_device,
    )
    from catchrl.supervised_train import train

    case = CASES[name]
    params = CatchParams(drift=case.drift)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(work or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / f"{name}.npz"
        save_dataset(make_dataset(case.kind, games=games, seed=seed, params=params), data)
        kind = "frames" if case.kind == "trajectories" else case.kind
        test = make_dataset(kind, games=test_games, seed=1_000_000, params=params)
        cfg = SupervisedConfig(
            case.task,
            str(data),
            arch=case.arch,
            epochs=epochs,
            patience=epochs,
            batch_size=batch_size,
            seed=seed,
        )
        device = setup_device()
        batch = batch_size or CPU_BATCH[case.task] * device["batch_scale"]
        ds = load_dataset(data, kind=DATA_KINDS[case.task])
        plain = _plain_fit(cfg, ds, batch, plain_epochs)
        n_train = len(fit_arrays(cfg, ds)[0][0])
        clock = _GoalClock()
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        out = train(
            cfg,
            folder / f"run-{name}",
            verbose=0,
            callbacks=[_goal_callback(case.task, test, n_train, clock)],
        )
        total = (time.perf_counter() - start_wall, time.process_time() - start_cpu)
    rates = out.history["samples_per_s"]
    trainer = statistics.median(rates[1:] or rates)
    plain_rate = statistics.median(plain[1:] or plain)
    return {
        "model": name,
        "params": out.model.count_params(),
        "batch": batch,
        "train samples": n_train,
        "trainer samples/s": trainer,
        "plain fit samples/s": plain_rate,
        "plain/trainer": plain_rate / trainer,
        "epochs": len(rates),
        "run wall s": total[0],
        "run CPU s": total[1],
        "goals": {g: clock.reached.get(g) for g in GOALS[case.task]({**clock.last})},
        "final": clock.last,
        "device": device["devices"],
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: throughput per model, then the training seconds to each goal."""
    lines = [
        "| model | parameters | batch | trainer samples/s | plain `model.fit` samples/s "
        "| plain / trainer | epochs | run wall s | run CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['batch']} | {r['trainer samples/s']:,.0f} "
            f"| {r['plain fit samples/s']:,.0f} | {r['plain/trainer']:.2f} | {r['epochs']} "
            f"| {r['run wall s']:.0f} | {r['run CPU s']:.0f} |"
        )
    lines += ["", "| model | goal | reached at epoch | training wall s | training CPU s |"]
    lines.append("|---|---|---:|---:|---:|")
    for r in rows:
        for goal, hit in r["goals"].items():
            if hit is None:
                lines.append(f"| {r['model']} | {goal} | not reached | – | – |")
            else:
                lines.append(f"| {r['model']} | {goal} | {hit[0]} | {hit[1]:.0f} | {hit[2]:.0f} |")
    lines += ["", "Final held-out figures:", ""]
    for r in rows:
        shown = {k: round(v, 4) for k, v in r["final"].items() if k != "samples"}
        lines.append(f"- {r['model']}: {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (``catchrl bench supervised``): measure the cases, print the tables."""
    import json

    from catchrl.errors import CatchrlError as UserError

    p = argparse.ArgumentParser(
        prog="catchrl bench supervised",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_CASES),
        help=f"cases: {', '.join(CASES)} (default: {' '.join(DEFAULT_CASES)})",
    )
    p.add_argument("--games", type=int, default=300, help="training games per case (300)")
    p.add_argument("--epochs", type=int, default=8, help="trainer epochs (8)")
    p.add_argument("--test-games", type=int, default=30, help="held-out games for the goals")
    p.add_argument("--plain-epochs", type=int, default=3, help="plain fit epochs (3)")
    p.add_argument("--batch-size", type=int, default=0, help="0: the trainer's automatic batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    bad = [m for m in args.models if m not in CASES]
    if bad:
        raise UserError(f"unknown model {bad[0]!r}; choose from {', '.join(CASES)}")
    for name, value, low in (
        ("--games", args.games, 10),
        ("--epochs", args.epochs, 1),
        ("--test-games", args.test_games, 1),
        ("--plain-epochs", args.plain_epochs, 1),
    ):
        if value < low:
            raise UserError(f"{name} must be >= {low}, got {value}")
    if args.batch_size < 0:
        raise UserError(f"--batch-size must be >= 0, got {args.batch_size}")
    rows = []
    for name in args.models:
        rows.append(
            bench_case(
                name,
                args.games,
                args.epochs,
                args.test_games,
                args.plain_epochs,
                args.batch_size,
                args.seed,
            )
        )
        print(f"{name}: done", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(format_table(rows))
    return 0
