"""The summary files of a race (``catchrl bench``) or a study (``catchrl sweep``): md, csv, png."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from catchrl.config import TrainConfig, config_to_dict
from catchrl.plots import PlotError, plot_seeds
from catchrl.stats import COSTS, format_table, read_run, summarize, to_target


def write_summary(
    stem: Path,
    rows: Sequence[dict[str, Any]],
    target: float,
    what: str,
    head: Sequence[str] = (),
    x: str = "steps",
    extra: Sequence[str] = (),
) -> str:
    """Write ``STEM.md`` (``head``, the table), ``.csv`` (a line per seed), ``.png``; the table."""
    table = format_table(rows, target, what)
    stem.with_suffix(".md").write_text("\n".join([*head, table]) + "\n", encoding="utf-8")
    with stem.with_suffix(".csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["group", "run", "seed", *COSTS, "test_win_rate", "model", *extra])
        for row in rows:
            for r in row["runs"]:
                costs = to_target(r["evaluations"], target).values()
                figures = [c if math.isfinite(c) else "" for c in costs]
                figures += [r["test_win_rate"], r["model"], *(r[key] for key in extra)]
                out.writerow([row["label"], r["name"], r["seed"], *figures])
    try:
        plot_seeds(rows, x, stem.with_suffix(".png"))
    except PlotError:  # matplotlib (the plot extra) is not installed: the table is enough
        pass
    return table


def setting_label(values: Mapping[str, Any]) -> str:
    """``agent.batch_size=64 agent.lr=0.001`` of a trial's ``TABLE.KEY`` values (``base``: none)."""
    shown = sorted((k, v) for k, v in values.items() if "." in k and k != "run.seed")
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown]
    return " ".join(parts) or "base"


def summarize_study(study: Path, doc: dict[str, Any], base: TrainConfig) -> list[dict[str, Any]]:
    """Per setting (best test IQM first), a study's finished trials; writes ``STUDY/summary.*``."""
    from catchrl.evaluation import TEST_SEED

    target = base.run.target_win_rate or 0.99
    done = [read_run(p.parent) for p in sorted((study / "trials").glob("*/eval.json"))]
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for run in done:  # TPE may propose a setting twice: the same setting and seed is one run
        tables = config_to_dict(run["config"])
        values = {key: tables[key.split(".")[0]][key.split(".", 1)[1]] for key in doc["space"]}
        groups.setdefault(setting_label(values), {}).setdefault(run["seed"], run)
    by_seed = {label: [runs[s] for s in sorted(runs)] for label, runs in groups.items()}
    rows = sorted(summarize(by_seed, target), key=lambda row: -row["iqm"])
    kept = [run for row in rows for run in row["runs"]]
    models = ", ".join(sorted({run["model"] for run in kept}))
    games = kept[0]["test_games"] if kept else 0
    grid_only = all(kind == "grid_search" for kind, _ in doc["space"].values())
    search = "grid" if doc["search"] == "random" and grid_only else doc["search"]
    head = [
        f"# Study {study.name}: {len(done)}/{doc['trials']} trials, search {search}, "
        f"base preset {base.preset} ({base.algo})",
        "",
        f"Test: each trial's kept model ({models}) on {games} test games (seed {TEST_SEED}).",
        f"Seeds: summary.csv. TensorBoard: `tensorboard --logdir {study / 'trials'}`",
    ]
    if len(done) > len(kept):
        repeats = len(done) - len(kept)
        head.append(f"{repeats} trials repeated a setting and seed already run: counted once.")
    write_summary(study / "summary", rows, target, "setting", [*head, ""], x="steps")
    return rows
