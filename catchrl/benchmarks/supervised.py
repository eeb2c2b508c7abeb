"""Supervised training throughput and time to the accuracy goals (``catchrl bench supervised``).

For each case, on the same data: the trainer (:func:`catchrl.supervised_train.train`
into a temporary run directory) with its samples/s and the training seconds (wall,
CPU) until each goal is first met on held-out games (seeds 1,000,000 ..; the
evaluation not counted); and a plain ``model.compile`` + ``model.fit`` of the same
model on in-memory arrays (no XLA). samples/s is the median over epochs after the
first (which compiles); ``plain / trainer`` < 1 means the trainer is faster.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catchrl.errors import CatchrlError
from catchrl.fields import COUNT, INT_MAX, Range

CASES = {  # name: (task, arch, drift, dataset kind)
    "perception-small": ("perception", "small", 0, "frames"),
    "perception-small-drift5": ("perception", "small", 5, "frames"),
    "perception-book": ("perception", "book", 0, "frames"),
    "perception-lenet": ("perception", "lenet", 0, "frames"),
    "imitation-small": ("imitation", "small", 0, "expert"),
    "sequence-gru-drift5": ("sequence", "gru", 5, "trajectories"),
    "sequence-lstm-drift5": ("sequence", "lstm", 5, "trajectories"),
}
DEFAULT_CASES = ("perception-small", "imitation-small", "sequence-gru-drift5")


def _perception_goals(m: dict[str, float]) -> dict[str, bool]:
    """Every position output (the x-speed only after a game's first frame, which shows none)."""
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
"""Per task, the goals as tests of the figures of ``supervised.evaluation.evaluate_model``."""


def _goal_timer(task: str, test: Any, row: dict[str, Any]) -> Any:
    """A callback that sums the epochs' training seconds and notes when each goal is first met."""
    import keras

    from catchrl.supervised.evaluation import evaluate_model

    class GoalTimer(keras.callbacks.Callback):
        wall = cpu = 0.0

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            self.wall += row["train samples"] / max(float(logs.get("samples_per_s", 0)), 1e-9)
            self.cpu += float(logs.get("train_cpu_s", 0.0))
            row["final"] = evaluate_model(task, self.model, test)
            for goal, met in GOALS[task](row["final"]).items():
                if met and goal not in row["goals"]:
                    row["goals"][goal] = (epoch + 1, self.wall, self.cpu)

    return GoalTimer()


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
    """Measure one case of :data:`CASES`: trainer vs plain fit, and time to the goals.

    ``games`` train (10 % held out for validation), ``test_games`` test the goals;
    the trainer runs ``epochs`` epochs (no early stop), the plain fit ``plain_epochs``.
    ``work`` keeps the data and the run (default: a temporary folder).
    """
    import keras

    from catchrl.envs import CatchParams
    from catchrl.supervised.datasets import load_dataset, make_dataset, save_dataset
    from catchrl.supervised.train import (
        CPU_BATCH,
        SupervisedConfig,
        build_model,
        fit_arrays,
        setup_device,
    )
    from catchrl.supervised_train import train

    task, arch, drift, kind = CASES[name]
    params = CatchParams(drift=drift)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(work or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / f"{name}.npz"
        save_dataset(make_dataset(kind, games=games, seed=seed, params=params), data)
        test_kind = "frames" if kind == "trajectories" else kind
        test = make_dataset(test_kind, games=test_games, seed=1_000_000, params=params)
        cfg = SupervisedConfig(
            task, str(data), arch, epochs, batch_size, patience=epochs, seed=seed
        )
        device = setup_device()
        batch = batch_size or CPU_BATCH[task] * device["batch_scale"]
        ds = load_dataset(data)
        (x, y), _ = fit_arrays(cfg, ds)
        keras.utils.set_random_seed(seed)
        plain_model, plain = build_model(cfg, ds, compiled=False), []
        for _ in range(plain_epochs):
            start = time.perf_counter()
            plain_model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
            plain.append(len(x) / (time.perf_counter() - start))
        row: dict[str, Any] = {"model": name, "batch": batch, "train samples": len(x)}
        row |= {"goals": {}, "device": device["devices"]}
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        timer = _goal_timer(task, test, row)
        out = train(cfg, folder / f"run-{name}", verbose=0, callbacks=[timer])
        row["run wall s"] = time.perf_counter() - start_wall
        row["run CPU s"] = time.process_time() - start_cpu
    row["goals"] = {goal: row["goals"].get(goal) for goal in GOALS[task](row["final"])}
    rates = out.history["samples_per_s"]
    row["params"], row["epochs"] = out.model.count_params(), len(rates)
    row["trainer samples/s"] = statistics.median(rates[1:] or rates)
    row["plain fit samples/s"] = statistics.median(plain[1:] or plain)
    row["plain/trainer"] = row["plain fit samples/s"] / row["trainer samples/s"]
    return row


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
            cells = (
                "not reached | – | –" if hit is None else f"{hit[0]} | {hit[1]:.0f} | {hit[2]:.0f}"
            )
            lines.append(f"| {r['model']} | {goal} | {cells} |")
    lines += ["", "Final held-out figures:", ""]
    for r in rows:
        shown = {k: round(v, 4) for k, v in r["final"].items() if k != "samples"}
        lines.append(f"- {r['model']}: {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (``catchrl bench supervised``): measure the cases, print the tables."""
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
        raise CatchrlError(f"unknown model {bad[0]!r}; choose from {', '.join(CASES)}")
    Range(10, INT_MAX).check("--games", args.games)
    Range(1, INT_MAX).check("--epochs", args.epochs)
    Range(1, INT_MAX).check("--test-games", args.test_games)
    Range(1, INT_MAX).check("--plain-epochs", args.plain_epochs)
    COUNT.check("--batch-size", args.batch_size)
    Range(0, 2**32 - 1).check("--seed", args.seed)
    rows = []
    for name in args.models:
        sizes = (args.games, args.epochs, args.test_games, args.plain_epochs, args.batch_size)
        rows.append(bench_case(name, *sizes, seed=args.seed))
        print(f"{name}: done", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(format_table(rows))
    return 0
