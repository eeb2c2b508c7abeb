"""'catchrl plot': learning curves of one or more runs to a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from catchrl.commands import options
from catchrl.errors import CatchrlError, UserError
from catchrl.plots import plot_runs, pyplot
from catchrl.stats import read_run

EPILOG = """examples:
  catchrl plot runs/dqn-pixels-20261122-150000              # -> RUN/curves.png
  catchrl plot runs/dqn runs/sb3-ppo --out compare.png      # several runs, one figure

Panels: win rate vs games and vs training seconds (validation dots, the kept model's test
as a star, with 95 % intervals), the loss and epsilon. A run is labelled NAME (ALGO, OBS_TYPE).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl plot``."""
    help = "plot learning curves (win rate, loss, epsilon) to a PNG"
    p = options.add_command(sub, "plot", help, __doc__, EPILOG, func=run)
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--out", type=Path, help="PNG file (default RUN/curves.png)")
    window = options.number(1, note="games in the moving win rate")
    p.add_argument("--window", type=window, default=100, help="games in the moving win rate")


def read_curves(path: Path) -> dict[str, Any]:
    """A run (:func:`catchrl.stats.read_run`) labelled ``NAME (ALGO, OBS_TYPE)``."""
    try:
        run = read_run(path)
    except (CatchrlError, ValueError) as e:
        raise UserError(f"{path}: cannot read the run ({e})") from e
    if len(run["metrics"]["game"]) == 0:
        raise UserError(f"{path}: cannot read the run (metrics.tsv has no games yet)")
    cfg = run["config"]
    return run | {"label": f"{path.name} ({cfg.algo}, {cfg.env.obs_type})"}


def run(args: argparse.Namespace) -> int:
    """Write the PNG of :func:`catchrl.plots.plot_runs`."""
    out = args.out or (args.runs[0] / "curves.png")
    figure = plot_runs([read_curves(run) for run in args.runs], args.window)
    try:
        figure.savefig(out, dpi=110)
    except OSError as e:  # a missing folder, no permission
        raise UserError(f"--out {out}: cannot write ({e.strerror or e})") from None
    finally:
        pyplot().close(figure)
    print(f"wrote {out}")
    return 0
