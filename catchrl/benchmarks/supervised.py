"""``catchrl bench supervised``: samples/s (median after epoch 1) and time to the goals."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

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


def _positions(figures: dict[str, float], prefix: str) -> list[float]:
    """The perception figures of the positions (not the ball's x-speed)."""
    return [v for k, v in figures.items() if k.startswith(prefix) and not k.endswith("_ball_vx")]


GOALS = {
    "perception": {
        "MAE < 0.5 px": lambda m: max(_positions(m, "mae_px_")) < 0.5,
        ">= 99 % within 1 px": lambda m: min(_positions(m, "within_1px_")) >= 0.99,
    },
    "imitation": {">= 95 % oracle actions": lambda m: m["action_accuracy"] >= 0.95},
    "sequence": {
        "landing MAE < 2 px": lambda m: m["landing_mae_px"] < 2.0,
        "landing MAE <= 1 px": lambda m: m["landing_mae_px"] <= 1.0,
    },
}
"""Per task, each goal as a test of ``supervised.evaluation.evaluate_model``'s figures."""


def bench_case(
    name: str, games: int, epochs: int, test_games: int = 30, batch_size: int = 0, seed: int = 0
) -> dict[str, Any]:
    """Train one case of :data:`CASES` for ``epochs`` epochs (no early stop), timing the goals."""
    import keras

    from catchrl.envs import CatchParams
    from catchrl.supervised.datasets import make_dataset, save_dataset
    from catchrl.supervised.evaluation import evaluate_model
    from catchrl.supervised.train import CPU_BATCH, SupervisedConfig
    from catchrl.supervised_train import train

    task, arch, drift, kind = CASES[name]
    params = CatchParams(drift=drift)
    test_kind = "frames" if kind == "trajectories" else kind
    test = make_dataset(test_kind, games=test_games, seed=1_000_000, params=params)
    row: dict[str, Any] = {"model": name, "goals": dict.fromkeys(GOALS[task])}
    spent = {"wall": 0.0, "cpu": 0.0}

    class GoalTimer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            assert logs is not None
            spent["wall"] += logs["train_s"]
            spent["cpu"] += logs["train_cpu_s"]
            row["final"] = evaluate_model(task, self.model, test)
            for goal, met in GOALS[task].items():
                if met(row["final"]) and row["goals"][goal] is None:
                    row["goals"][goal] = (epoch + 1, spent["wall"], spent["cpu"])

    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "data.npz")
        save_dataset(make_dataset(kind, games=games, seed=seed, params=params), data)
        cfg = SupervisedConfig(task, data, arch, epochs, batch_size, patience=epochs, seed=seed)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        out = train(cfg, Path(tmp) / "run", verbose=0, callbacks=[GoalTimer()])
        row["run wall s"] = time.perf_counter() - start_wall
        row["run CPU s"] = time.process_time() - start_cpu
    rates = out.history["samples_per_s"]
    row["params"], row["epochs"] = out.model.count_params(), len(rates)
    row["batch"] = batch_size or CPU_BATCH[task] * out.device["batch_scale"]
    row["samples/s"] = statistics.median(rates[1:] or rates)
    row["device"] = out.device["devices"]
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: speed per model, the training seconds to each goal, the final figures."""
    lines = ["| model | parameters | batch | samples/s | epochs | run wall s | run CPU s |"]
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    lines += [
        f"| {r['model']} | {r['params']:,} | {r['batch']} | {r['samples/s']:,.0f} "
        f"| {r['epochs']} | {r['run wall s']:.0f} | {r['run CPU s']:.0f} |"
        for r in rows
    ]
    lines += ["", "| model | goal | reached at epoch | training wall s | training CPU s |"]
    lines.append("|---|---|---:|---:|---:|")
    for r in rows:
        for goal, hit in r["goals"].items():
            reached = f"{hit[0]} | {hit[1]:.0f} | {hit[2]:.0f}" if hit else "not reached | – | –"
            lines.append(f"| {r['model']} | {goal} | {reached} |")
    lines += ["", "Final held-out figures:", ""]
    for r in rows:
        shown = {k: round(v, 4) for k, v in r["final"].items() if k != "samples"}
        lines.append(f"- {r['model']}: {shown}")
    return "\n".join(lines)
