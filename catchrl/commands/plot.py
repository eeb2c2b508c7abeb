"""``catchrl plot``: learning curves of one or more runs to a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from catchrl.cli import UserError
from catchrl.commands.options import check_range

EPILOG = """examples:
  catchrl plot runs/dqn-pixels-20261122-150000              # -> RUN/curves.png
  catchrl plot runs/dqn runs/sb3-ppo --out compare.png      # several runs, one figure

Panels: win rate vs games and vs training seconds (training, validation dots, the kept
model's test as a star, with 95 % intervals), the loss (DQN-family TD losses and PPO/A2C
total losses on separate axes), and ε where the algorithm has one. Runs are labelled
NAME (ALGO, OBS_TYPE).
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


def run(args: argparse.Namespace) -> int:
    """Write the PNG of :func:`catchrl.plots.plot_runs`."""
    from catchrl.plots import save_plot

    check_range("--window", args.window, 1, note="games in the moving win rate")
    out = args.out or (args.runs[0] / "curves.png")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {str(out.parent)!r} does not exist")
    print(f"wrote {save_plot(args.runs, out, args.window)}")
    return 0
