"""``catchrl plot``: learning curves of one or more runs to a PNG."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from catchrl.cli import UserError
from catchrl.commands.checks import check_range

EPILOG = """examples:
  catchrl plot runs/dqn-pixels-20261122-150000              # -> RUN/curves.png
  catchrl plot runs/a runs/b --out compare.png              # several runs, one figure
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl plot``."""
    p = sub.add_parser(
        "plot",
        help="plot learning curves (win rate, loss, epsilon) to a PNG",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--out", type=Path, help="PNG file (default RUN/curves.png)")
    p.add_argument("--window", type=int, default=100, help="games in the moving win rate")
    p.set_defaults(func=run)


def _evals(run_dir: Path) -> list[dict]:
    path = run_dir / "evals.json"
    return json.loads(path.read_text()) if path.is_file() else []


def run(args: argparse.Namespace) -> int:
    """Draw win rate / loss / epsilon vs games and win rate vs wall time."""
    from catchrl.rundir import CheckpointError, RunDir

    check_range("--window", args.window, 1, note="games in the moving win rate")
    if args.out is not None and not args.out.parent.is_dir():
        raise UserError(f"--out {args.out}: folder {str(args.out.parent)!r} does not exist")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise UserError("plotting needs matplotlib: pip install 'catchrl[plot]'") from e
    tables = {}
    for r in args.runs:
        try:
            tables[r] = RunDir(r).read_metrics()
        except (CheckpointError, ValueError) as e:
            raise UserError(f"{r}: cannot read metrics.tsv ({e})") from e
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    (ax_win, ax_time), (ax_loss, ax_eps) = axes
    for r, m in tables.items():
        label = r.name
        win = (m["reward"] > 0).astype(float)
        k = max(1, min(args.window, len(win)))
        moving = np.convolve(win, np.ones(k) / k, mode="valid")
        games = m["game"][k - 1 :]
        (line,) = ax_win.plot(games, 100 * moving, label=f"{label} (last {k} games)")
        ax_time.plot(m["wall_time"][k - 1 :], 100 * moving, color=line.get_color(), label=label)
        ev = _evals(r)
        if ev:
            ax_win.plot(
                [e["games"] for e in ev],
                [100 * e["win_rate"] for e in ev],
                "o",
                color=line.get_color(),
                label=f"{label} greedy eval",
            )
            ax_time.plot(
                [e["wall_time"] for e in ev],
                [100 * e["win_rate"] for e in ev],
                "o",
                color=line.get_color(),
            )
        ax_loss.plot(m["game"], m["loss"], color=line.get_color(), lw=0.8, label=label)
        ax_eps.plot(m["game"], m["epsilon"], color=line.get_color(), label=label)
    ax_win.axhline(87, ls=":", color="grey", label="book: 87/100 after 5000 games")
    ax_win.set(xlabel="games", ylabel="win rate %", ylim=(0, 101), title="Win rate while training")
    ax_time.set(
        xlabel="wall-clock seconds",
        ylabel="win rate %",
        ylim=(0, 101),
        title="Win rate vs wall time",
    )
    ax_loss.set(xlabel="games", ylabel="loss", title="Training loss (mean per game)")
    if all((m["loss"] > 0).any() for m in tables.values()):
        ax_loss.set_yscale("log")
    ax_eps.set(xlabel="games", ylabel="epsilon", title="Exploration rate")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = args.out or (args.runs[0] / "curves.png")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {str(out.parent)!r} does not exist")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0
