"""Figures: the learning curves of runs (``catchrl plot``) and the seeds of a race or a study."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.errors import CatchrlError

_RATE_CI = ("win_rate", "ci95_low", "ci95_high")


class PlotError(CatchrlError):
    """A run cannot be plotted (no metrics, malformed files) or matplotlib is missing."""


def pyplot() -> Any:
    """``matplotlib.pyplot``, drawing to files unless a notebook chose its backend."""
    try:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotError("plotting needs matplotlib: pip install 'catchrl[plot]'") from e
    return plt


def _loss_kind(algo: str) -> str:
    """The title of ``algo``'s loss axis: Q-learning's TD loss or the policy-gradient loss."""
    if algo.endswith("dqn"):  # dqn, sb3-dqn, sb3-qrdqn, rllib-dqn
        return "TD loss of the Q-network (DQN family)"
    return "Total loss: policy + value - entropy (PPO, A2C, APPO)"


def symlog_threshold(losses: Sequence[np.ndarray]) -> float | None:
    """The linear range of a symlog axis where ``|loss| > 0`` spans > 100x; None: linear."""
    values = np.abs(np.concatenate([np.asarray(x, dtype=np.float64) for x in losses]))
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0 or values.max() / np.percentile(values, 5) <= 100:
        return None
    return float(np.percentile(values, 5))


def plot_runs(runs: Sequence[dict[str, Any]], window: int = 100) -> Any:
    """Win rate vs games and vs seconds, the loss (an axis per kind) and ε; the Figure."""
    plt = pyplot()
    fig = plt.figure(figsize=(12, 8))
    grid = fig.add_gridspec(2, 2)
    ax_win, ax_time = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    kinds = list(dict.fromkeys(_loss_kind(run["config"].algo) for run in runs))
    loss_cells = grid[1, 0].subgridspec(len(kinds), 1, hspace=0.45)
    loss_column = loss_cells.subplots(sharex=True, squeeze=False)[:, 0]
    loss_axes = dict(zip(kinds, loss_column, strict=True))
    ax_eps = fig.add_subplot(grid[1, 1])
    for i, run in enumerate(runs):
        color, m, label = f"C{i % 10}", run["metrics"], run["label"]
        k = max(1, min(window, len(m["game"])))
        moving = 100 * np.convolve(m["reward"] > 0, np.ones(k) / k, mode="valid")
        ax_win.plot(m["game"][k - 1 :], moving, color=color, lw=1.2, label=label)
        times = m["wall_time"][k - 1 :]
        last = np.r_[times[1:] != times[:-1], True]  # a vector step's games end together
        ax_time.plot(times[last], moving[last], color=color, lw=1.2, label=label)
        _draw_evals(ax_win, "games", m["game"][-1], run, color)
        _draw_evals(ax_time, "wall_time", m["wall_time"][-1], run, color)
        ax_loss = loss_axes[_loss_kind(run["config"].algo)]
        ax_loss.plot(m["game"], m["loss"], color=color, lw=0.8, label=label)
        if m["epsilon"].any():
            ax_eps.plot(m["game"], m["epsilon"], color=color, label=label)
        else:
            ax_eps.plot([], [], " ", label=f"{label}: no ε (stochastic policy)")
    ax_win.axhline(87, ls=":", color="grey", label="book: 87/100 after 5,000 games")
    marks = "validation (dots, 95 % CI),\nkept model on the test games (star)"
    ax_win.set(xlabel="games", ylabel="win rate %", ylim=(-2, 102))
    ax_win.set_title(f"Win rate: training (last {window} games); {marks}", fontsize=9)
    ax_time.set(xlabel="training seconds", ylabel="win rate %", ylim=(-2, 102))
    ax_time.set_title("Win rate vs training time")
    for kind, ax_loss in loss_axes.items():
        linthresh = symlog_threshold([line.get_ydata() for line in ax_loss.get_lines()])
        if linthresh:  # zeros and negative losses stay visible
            ax_loss.set_yscale("symlog", linthresh=linthresh)
            ax_loss.axhspan(-linthresh, linthresh, color="grey", alpha=0.08, lw=0)
        ax_loss.axhline(0, color="grey", lw=0.6)
        ylabel = f"loss (symlog: linear within ±{linthresh:.2g})" if linthresh else "loss"
        ax_loss.set(xlabel="games" if kind == kinds[-1] else "", ylabel=ylabel)
        ax_loss.set_title(f"{kind}, mean per game", fontsize=9)
    ax_eps.set(xlabel="games", ylabel="ε", ylim=(-0.02, 1.02), title="Exploration rate ε")
    for ax in fig.axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if not any(run["metrics"]["epsilon"].any() for run in runs):  # say why, not an empty axis
        ax_eps.set_axis_off()
        names = "\n".join(run["label"] for run in runs)
        note = f"No ε: these runs explore with a stochastic policy\n{names}"
        ax_eps.text(0.5, 0.5, note, transform=ax_eps.transAxes, ha="center", va="center")
    fig.tight_layout()
    return fig


def _draw_evals(ax: Any, key: str, end: float, run: dict[str, Any], color: str) -> None:
    """The validation evaluations as dots at ``key``; the test as a star at ``end``."""
    marks = [(run["evaluations"], [e[key] for e in run["evaluations"]], {"fmt": "o", "ms": 4})]
    if run["test"]:
        marks.append(([run["test"]], [end], {"fmt": "*", "ms": 13, "mec": "black"}))
        rate = 100 * run["test"]["win_rate"]
        ax.annotate(f"{rate:.1f} %", (end, rate), xytext=(7, -3), textcoords="offset points")
    for evals, x, style in marks:
        if evals:
            rate, low, high = (100 * np.array([e[k] for e in evals]) for k in _RATE_CI)
            err = np.stack([rate - low, high - rate]).clip(min=0)
            ax.errorbar(x, rate, yerr=err, color=color, elinewidth=0.8, capsize=2, **style)


def plot_seeds(rows: Sequence[dict[str, Any]], x: str, out: Path) -> Path:
    """Per :func:`catchrl.stats.summarize` row: seeds' validation curves along ``x``, tests, IQM."""
    plt = pyplot()
    fig, (curves, final) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, row in enumerate(rows):
        color = f"C{i % 10}"
        for j, run in enumerate(row["runs"]):
            ev = run["evaluations"]
            label = None if j else row["label"]
            x_values, rates = [e[x] for e in ev], [100 * e["win_rate"] for e in ev]
            curves.plot(x_values, rates, color=color, lw=1, alpha=0.8, label=label)
            final.scatter(i, 100 * run["test_win_rate"], color=color, s=18)
        final.hlines(100 * row["iqm"], i - 0.25, i + 0.25, color=color)
        if row["low"] is not None:
            err = [[100 * (row["iqm"] - row["low"])], [100 * (row["high"] - row["iqm"])]]
            final.errorbar(i + 0.15, 100 * row["iqm"], yerr=err, color=color, capsize=4)
    xlabel = {"steps": "env steps", "wall_time": "training seconds"}[x]
    curves.set(xlabel=xlabel, ylabel="win rate %", title="Validation win rate (each seed)")
    curves.legend(fontsize=7)
    final.set_xticks(range(len(rows)), [r["label"] for r in rows], rotation=15, fontsize=7)
    tested = [run for row in rows for run in row["runs"]]
    models = ", ".join(sorted({run.get("model") or "kept model" for run in tested}))
    games = max((run.get("test_games") or 0 for run in tested), default=0)
    title = f"{models} on {games:,} test games: seeds, IQM, 95 % CI"
    final.set(ylabel="win rate %", title=title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
