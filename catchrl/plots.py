"""Learning curves of one or more run directories (Keras DQN and SB3 alike) in one figure.

Four panels, one colour per run, labelled ``<run> (<algo>)``:

- win rate vs games: the moving training win rate, the greedy validation
  evaluations made while training (dots, with their 95 % intervals) and the
  final test evaluation (a star with its interval, ``eval.json``);
- the same against wall-clock seconds;
- the training loss (mean per game) on a linear axis, or a symmetric-log axis
  when it spans orders of magnitude: zeros (the observe phase) and PPO's or
  A2C's negative losses stay visible;
- ε, for the runs whose algorithm explores ε-greedily (catchrl's DQN, SB3 DQN,
  QR-DQN); PPO and A2C have none and are left out of that panel.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.errors import CatchrlError

__all__ = [
    "EPSILON_ALGOS",
    "PlotError",
    "RunCurves",
    "loss_scale",
    "plot_race",
    "plot_runs",
    "save_plot",
]

EPSILON_ALGOS = frozenset({"dqn", "sb3-dqn", "sb3-qrdqn"})
"""The algorithms that explore ε-greedily (the others: a stochastic policy)."""
BOOK_WIN_RATE = 87.0
"""The book's reported result: 87 of the last 100 games won after 5,000 games."""


class PlotError(CatchrlError):
    """A run cannot be plotted (no metrics, malformed files) or matplotlib is missing."""


@dataclass
class RunCurves:
    """What a run directory holds for plotting.

    Attributes:
        path: The run directory.
        algo: Its ``algo`` (from ``config.toml``; ``"?"`` if it has none).
        metrics: ``metrics.tsv``, one array per column (one row per game).
        evals: The validation evaluations made while training (``evals.json``).
        final: The final test evaluation (``eval.json``), if the run finished.

    """

    path: Path
    algo: str
    metrics: dict[str, np.ndarray]
    evals: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """``<run name> (<algo>)``."""
        return f"{self.path.name} ({self.algo})"

    @property
    def has_epsilon(self) -> bool:
        """Whether the algorithm explores ε-greedily."""
        return self.algo in EPSILON_ALGOS

    @classmethod
    def read(cls, path: str | Path) -> RunCurves:
        """Read a run directory.

        Raises:
            PlotError: No readable ``metrics.tsv`` (or an evaluation file is not JSON).

        """
        from catchrl.rundir import RunDir

        path = Path(path)
        rd = RunDir(path)
        try:
            metrics = rd.read_metrics()
            evals = rd.read_json("evals.json") if (path / "evals.json").is_file() else []
            final = rd.read_json("eval.json") if (path / "eval.json").is_file() else None
        except (CatchrlError, ValueError) as e:
            raise PlotError(f"{path}: cannot read the run ({e})") from e
        if len(metrics.get("game", ())) == 0:
            raise PlotError(f"{path}: metrics.tsv has no games yet")
        return cls(path, _algo(path), metrics, evals, final)


def _algo(path: Path) -> str:
    """The run's ``algo`` from its config.toml.

    A plain TOML read: the file may come from an older catchrl whose other settings
    this one would refuse.
    """
    import tomllib

    try:
        return str(tomllib.loads((path / "config.toml").read_text("utf-8")).get("algo", "dqn"))
    except (OSError, ValueError):
        return "?"


def loss_scale(losses: Sequence[np.ndarray]) -> tuple[str, float | None]:
    """The loss axis: ``("linear", None)``, or ``("symlog", linthresh)`` for a wide range.

    Symlog when the non-zero ``|loss|`` spans more than two orders of magnitude
    (e.g. a DQN's 1e-3 late losses beside its first 0.5, or PPO's small negative
    losses beside a DQN's); the linear region ends at the 5th percentile of the
    non-zero ``|loss|``, so zeros and negatives are drawn, not dropped as on a log axis.
    """
    values = np.abs(np.concatenate([np.asarray(x, dtype=np.float64) for x in losses]))
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return "linear", None
    low, high = np.percentile(values, 5), values.max()
    if high / low <= 100:
        return "linear", None
    return "symlog", float(low)


def _moving(win: np.ndarray, window: int) -> tuple[np.ndarray, int]:
    k = max(1, min(window, len(win)))
    return np.convolve(win, np.ones(k) / k, mode="valid"), k


def _last_per_time(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One point per wall-clock time: the games of a vector step end at the same instant."""
    last = np.r_[times[1:] != times[:-1], True]
    return times[last], values[last]


def plot_runs(runs: Sequence[RunCurves], window: int = 100) -> Any:
    """Draw the four panels for ``runs``; returns the matplotlib Figure.

    Raises:
        PlotError: matplotlib is not installed.

    """
    try:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")  # a file is drawn; a notebook keeps its own backend
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
    except ImportError as e:
        raise PlotError("plotting needs matplotlib: pip install 'catchrl[plot]'") from e
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (ax_win, ax_time), (ax_loss, ax_eps) = axes
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ks = []
    for i, run in enumerate(runs):
        color = colors[i % len(colors)]
        m = run.metrics
        moving, k = _moving((m["reward"] > 0).astype(float), window)
        ks.append(k)
        ax_win.plot(m["game"][k - 1 :], 100 * moving, color=color, lw=1.2, label=run.label)
        t, rate = _last_per_time(m["wall_time"][k - 1 :], 100 * moving)
        ax_time.plot(t, rate, color=color, lw=1.2, label=run.label)
        _draw_evals(ax_win, ax_time, run, color, m)
        ax_loss.plot(m["game"], m["loss"], color=color, lw=0.8, label=run.label)
        if run.has_epsilon:
            ax_eps.plot(m["game"], m["epsilon"], color=color, label=run.label)
        else:  # listed, without a curve: the algorithm has no ε
            ax_eps.plot([], [], " ", label=f"{run.label}: no ε (stochastic policy)")
    ax_win.axhline(BOOK_WIN_RATE, ls=":", color="grey", label="book: 87/100 after 5,000 games")
    window_text = f"last {ks[0]} games" if len(set(ks)) == 1 else "moving window"
    ax_win.set(xlabel="games", ylabel="win rate %", ylim=(-2, 102))
    ax_win.set_title(f"Win rate: training ({window_text}) and greedy evaluations")
    ax_time.set(xlabel="wall-clock seconds (training)", ylabel="win rate %", ylim=(-2, 102))
    ax_time.set_title("Win rate vs wall-clock time")
    scale, linthresh = loss_scale([r.metrics["loss"] for r in runs])
    if scale == "symlog":
        ax_loss.set_yscale("symlog", linthresh=linthresh)
        ax_loss.axhspan(-linthresh, linthresh, color="grey", alpha=0.08, lw=0)
    ax_loss.axhline(0, color="grey", lw=0.6)
    ylabel = f"loss (symlog: linear within ±{linthresh:.2g})" if linthresh else "loss"
    ax_loss.set(xlabel="games", ylabel=ylabel)
    ax_loss.set_title("Training loss (mean per game; 0 before learning starts)")
    ax_eps.set(xlabel="games", ylabel="ε", ylim=(-0.02, 1.02))
    ax_eps.set_title("Exploration rate ε (ε-greedy algorithms)")
    marks = [
        Line2D([], [], ls="", marker="o", ms=4, color="black", label="greedy evaluation (95 % CI)"),
        Line2D(
            [],
            [],
            ls="",
            marker="*",
            ms=11,
            mfc="white",
            color="black",
            label="final test evaluation",
        ),
    ]
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    for ax in (ax_win, ax_time):
        handles = [h for h in ax.get_legend_handles_labels()[0] if not _is_eval(h)]
        ax.legend(handles=handles + marks, fontsize=7, loc="upper left")
    ax_loss.legend(fontsize=7, loc="best")
    if any(r.has_epsilon for r in runs):
        ax_eps.legend(fontsize=7, loc="center right")
    else:  # nothing to draw: say why instead of an empty axis
        ax_eps.set_axis_off()
        names = "\n".join(r.label for r in runs)
        ax_eps.text(
            0.5,
            0.5,
            f"No ε: these runs explore with a stochastic policy\n{names}",
            transform=ax_eps.transAxes,
            ha="center",
            va="center",
            color="dimgrey",
        )
    fig.tight_layout()
    return fig


def _is_eval(handle: Any) -> bool:
    return getattr(handle, "get_label", lambda: "")().startswith("_eval")


def _draw_evals(ax_win: Any, ax_time: Any, run: RunCurves, color: str, m: dict) -> None:
    """The training-time evaluations (dots) and the final one (a star), with 95 % intervals."""
    style = {"color": color, "elinewidth": 0.8, "capsize": 2, "label": "_eval"}
    if run.evals:
        rate = np.array([100 * e["win_rate"] for e in run.evals])
        err = _interval(run.evals, rate)
        for ax, key in ((ax_win, "games"), (ax_time, "wall_time")):
            ax.errorbar([e[key] for e in run.evals], rate, yerr=err, fmt="o", ms=4, **style)
    if run.final is not None:
        rate = np.array([100 * run.final["win_rate"]])
        err = _interval([run.final], rate)
        for ax, x in ((ax_win, m["game"][-1]), (ax_time, m["wall_time"][-1])):
            ax.errorbar(
                [x], rate, yerr=err, fmt="*", ms=13, mec="black", mew=0.6, zorder=5, **style
            )
            ax.annotate(
                f"{rate[0]:.0f}%",
                (x, rate[0]),
                xytext=(7, -3),
                textcoords="offset points",
                fontsize=8,
                color=color,
            )


def _interval(evals: Sequence[dict], rate: np.ndarray) -> np.ndarray | None:
    """``[2, n]`` error bars from the evaluations' 95 % intervals (None if they have none)."""
    if not all("ci95_low" in e and "ci95_high" in e for e in evals):
        return None
    low = 100 * np.array([e["ci95_low"] for e in evals])
    high = 100 * np.array([e["ci95_high"] for e in evals])
    return np.stack([rate - low, high - rate]).clip(min=0)


def save_plot(run_dirs: Sequence[str | Path], out: str | Path, window: int = 100) -> Path:
    """Read ``run_dirs``, draw them in one figure and write it to ``out`` (PNG); returns ``out``."""
    fig = plot_runs([RunCurves.read(r) for r in run_dirs], window)
    import matplotlib.pyplot as plt

    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return Path(out)


def plot_race(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Greedy win rate vs training wall-clock seconds, every run, one panel per obs type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs_types = sorted({r["obs_type"] for r in results})
    agents = sorted({r["agent"] for r in results})
    colors = {a: f"C{i}" for i, a in enumerate(agents)}
    fig, axes = plt.subplots(1, len(obs_types), figsize=(6 * len(obs_types), 4.5), squeeze=False)
    for ax, obs in zip(axes[0], obs_types, strict=True):
        labelled: set[str] = set()
        for r in results:
            if r["obs_type"] != obs or not r["evals"]:
                continue
            t = [0.0] + [e["train_s"] for e in r["evals"]]
            w = [0.0] + [100 * e["win_rate"] for e in r["evals"]]
            label = None if r["agent"] in labelled else r["agent"]
            labelled.add(r["agent"])
            ax.plot(t, w, "o-", ms=3, color=colors[r["agent"]], label=label, alpha=0.8)
        for thr in (0.95, 0.99):
            ax.axhline(100 * thr, ls=":", color="grey", lw=0.8)
        ax.set(
            title=f"Catch ({obs}): greedy win rate on 1,000 test games",
            xlabel="training wall-clock seconds (evaluations excluded)",
            ylabel="win rate %",
            ylim=(0, 101),
        )
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
