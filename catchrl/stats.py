"""Statistics over seeds for a race (``catchrl bench``) or a study (``catchrl sweep``).

Costs to the target: median, IQR and worst seed (a seed that never gets there counts as
infinite); the kept model's test win rate: IQM with a 95 % bootstrap CI (rliable's method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.config import load_run_config

COSTS = {"steps": "steps", "wall_time": "training s", "train_cpu_s": "CPU s"}
"""The costs to the target: their key in an evaluation record (``evals.json``), their name."""
QUARTILES = {"median": 0.5, "q25": 0.25, "q75": 0.75, "worst": 1.0}


def read_run(run_dir: Path) -> dict[str, Any]:
    """A run's config, ``metrics.tsv``, validation evaluations and test, from its directory."""
    from catchrl.rundir import RunDir

    rd = RunDir(run_dir)
    evals = rd.read_json("evals.json") if (run_dir / "evals.json").is_file() else []
    test = rd.read_json("eval.json") if (run_dir / "eval.json").is_file() else None
    metrics = rd.read_metrics()
    cfg = load_run_config(run_dir / "config.toml")
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
    iqm = float(stats.trim_mean(x, 0.25))
    if len(x) < 2:
        return iqm, None, None
    if np.ptp(x) == 0:  # every seed alike: scipy cannot bootstrap a constant
        return iqm, iqm, iqm
    ci = stats.bootstrap(
        (x,),
        lambda a, axis: stats.trim_mean(a, 0.25, axis=axis),
        n_resamples=10_000,
        method="percentile",
        rng=0,
    ).confidence_interval
    return iqm, float(ci.low), float(ci.high)


def summarize(groups: dict[str, list[dict[str, Any]]], target: float) -> list[dict[str, Any]]:
    """Per group of runs: label, runs, seeds, reached, the costs' spread, test IQM, CPU s / 1k."""
    rows = []
    for label, runs in groups.items():
        costs = [to_target(r["evaluations"], target) for r in runs]
        row: dict[str, Any] = {
            "label": label,
            "runs": runs,
            "seeds": len(runs),
            "reached": sum(math.isfinite(c["steps"]) for c in costs),
        }
        for key in COSTS:
            ordered = sorted(c[key] for c in costs)
            row[key] = {name: _percentile(ordered, q) for name, q in QUARTILES.items()}
        row["iqm"], row["low"], row["high"] = iqm_ci([r["test_win_rate"] for r in runs])
        last = [r["evaluations"][-1] for r in runs if r["evaluations"]]
        per_1k = [1000 * e["train_cpu_s"] / e["steps"] for e in last]
        row["cpu_per_1k"] = float(np.median(per_1k)) if per_1k else math.nan
        rows.append(row)
    return rows


def _number(value: float, digits: int) -> str:
    return "never" if math.isinf(value) else f"{value:,.{digits}f}"


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
            median, low, high, worst = (_number(row[key][q], digits) for q in QUARTILES)
            cells.append(f"{median} [{low}, {high}], {worst}" if row["reached"] else "never")
        iqm = f"{100 * row['iqm']:.1f}"
        if row["low"] is not None:
            iqm += f" [{100 * row['low']:.1f}, {100 * row['high']:.1f}]"
        cells += [iqm, f"{row['cpu_per_1k']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
