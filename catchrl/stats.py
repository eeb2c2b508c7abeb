"""Statistics over seeds and their summary files (bench, sweep); IQM, bootstrap CI (rliable)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.config import TrainConfig, load_config
from catchrl.evaluation import TEST_SEED
from catchrl.plots import PlotError, plot_seeds
from catchrl.rundir import RunDir, read_json

COSTS = {"steps": "steps", "wall_time": "training s", "train_cpu_s": "CPU s"}
"""The costs to the target: their key in an evaluation record (``evals.json``), their name."""
QUARTILES = {"median": 0.5, "q25": 0.25, "q75": 0.75, "worst": 1.0}


def read_run(run_dir: Path) -> dict[str, Any]:
    """A run's config, ``metrics.tsv``, validation evaluations and test, from its directory."""
    evals = read_json(run_dir / "evals.json") if (run_dir / "evals.json").is_file() else []
    test = read_json(run_dir / "eval.json") if (run_dir / "eval.json").is_file() else None
    metrics = RunDir(run_dir).read_metrics()
    cfg = load_config(path=run_dir / "config.toml")
    return {
        "name": run_dir.name,
        "config": cfg,
        "metrics": metrics,
        "seed": cfg.run.seed,
        "steps": int(metrics["steps"][-1]) if len(metrics["steps"]) else 0,
        "evaluations": evals,
        "val_win_rate": evals[-1]["win_rate"] if evals else 0.0,
        "test": test,
        "test_win_rate": test["win_rate"] if test else None,
        "test_games": test["games"] if test else None,
        "model": test["model"] if test else None,
    }


def to_target(evaluations: Sequence[dict[str, Any]], target: float) -> dict[str, float]:
    """The costs of the first evaluation at or above ``target`` (all infinite: never)."""
    for e in evaluations:
        if e["win_rate"] >= target:
            return {key: float(e[key]) for key in COSTS}
    return dict.fromkeys(COSTS, math.inf)


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in [0, 1]); infinite if it leans on a never."""
    pos = q * (len(ordered) - 1)
    low, high = ordered[math.floor(pos)], ordered[math.ceil(pos)]
    return math.inf if math.isinf(high) else low + (high - low) * (pos - math.floor(pos))


def iqm_ci(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Interquartile mean and its 95 % percentile-bootstrap interval (None with one seed)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    trimmed = functools.partial(stats.trim_mean, proportiontocut=0.25)
    iqm = float(trimmed(x))
    if len(x) < 2:
        return iqm, None, None
    if np.ptp(x) == 0:  # every seed alike: scipy cannot bootstrap a constant
        return iqm, iqm, iqm
    ci = stats.bootstrap((x,), trimmed, n_resamples=10_000, method="percentile", rng=0)
    return iqm, float(ci.confidence_interval.low), float(ci.confidence_interval.high)


def summarize(groups: dict[str, list[dict[str, Any]]], target: float) -> list[dict[str, Any]]:
    """Per group of runs: label, runs, seeds, reached, the costs' spread, test IQM, CPU s / 1k."""
    rows = []
    for label, runs in groups.items():
        costs = [to_target(r["evaluations"], target) for r in runs]
        reached = sum(math.isfinite(c["steps"]) for c in costs)
        row: dict[str, Any] = {"label": label, "runs": runs, "seeds": len(runs), "reached": reached}
        for key in COSTS:
            ordered = sorted(c[key] for c in costs)
            row[key] = {name: _percentile(ordered, q) for name, q in QUARTILES.items()}
        row["iqm"], row["low"], row["high"] = iqm_ci([r["test_win_rate"] for r in runs])
        last = [r["evaluations"][-1] for r in runs if r["evaluations"]]
        per_1k = [1000 * e["train_cpu_s"] / e["steps"] for e in last]
        row["cpu_per_1k"] = float(np.median(per_1k)) if per_1k else math.nan
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]], target: float, what: str) -> str:
    """A Markdown table of :func:`summarize`'s rows; ``what`` heads the labels' column."""
    goal = f"{100 * target:g} %"
    head = [what, f"seeds at {goal}"]
    head += [f"{name} to {goal}: median [IQR], worst" for name in COSTS.values()]
    head += ["test win rate %: IQM [95 % CI]", "CPU s / 1k steps"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for row in rows:
        cells = [row["label"], f"{row['reached']}/{row['seeds']}"]
        for key, digits in zip(COSTS, (0, 1, 1), strict=True):
            shown = ("never" if math.isinf(v) else f"{v:,.{digits}f}" for v in row[key].values())
            median, low, high, worst = shown
            cells.append(f"{median} [{low}, {high}], {worst}" if row["reached"] else "never")
        ci = f" [{100 * row['low']:.1f}, {100 * row['high']:.1f}]" if row["low"] is not None else ""
        cells += [f"{100 * row['iqm']:.1f}{ci}", f"{row['cpu_per_1k']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    with contextlib.suppress(PlotError):  # no matplotlib (the plot extra): the table is enough
        plot_seeds(rows, x, stem.with_suffix(".png"))
    return table


def setting_label(values: Mapping[str, Any]) -> str:
    """``agent.batch_size=64 agent.lr=0.001`` of a trial's ``TABLE.KEY`` values (``base``: none)."""
    shown = sorted((k, v) for k, v in values.items() if "." in k and k != "run.seed")
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown]
    return " ".join(parts) or "base"


def summarize_study(study: Path, doc: dict[str, Any], base: TrainConfig) -> list[dict[str, Any]]:
    """Per setting (best test IQM first), a study's finished trials; writes ``STUDY/summary.*``."""
    target = base.run.target_win_rate or 0.99
    done = [read_run(p.parent) for p in sorted((study / "trials").glob("*/eval.json"))]
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for run in done:  # TPE may propose a setting twice: the same setting and seed is one run
        tables = dataclasses.asdict(run["config"])
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
    if repeats := len(done) - len(kept):
        head.append(f"{repeats} trials repeated a setting and seed already run: counted once.")
    write_summary(study / "summary", rows, target, "setting", [*head, ""])
    return rows
