"""'catchrl data': generate labelled datasets from the game ('catchrl data make')."""

from __future__ import annotations

import argparse
import math
import time

from catchrl.commands import options
from catchrl.commands.options import SEED, number
from catchrl.config import MAX_NUM_ENVS
from catchrl.envs import CatchParams
from catchrl.errors import UserError
from catchrl.supervised.datasets import KINDS, make_dataset, save_dataset

EPILOG = """examples:
  catchrl data make --kind frames --games 1000 --seed 0 --out data/frames.npz
  catchrl data make --kind frames --games 100 --seed 1000000 --out data/frames-test.npz
  catchrl data make --kind trajectories --games 5000 --drift 5 --out data/traj-drift5.npz

Game g plays seed SEED + g: give held-out sets seeds far from the training ones.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl data make``."""
    p = options.add_command(sub, "data", "generate labelled datasets from the game", __doc__)
    help = "play seeded games (the oracle mixed with random actions) and save them labelled"
    games = options.games(1000, 0, "seed of game 0 (default 0)", SEED, math.inf)  # the data's own
    actions = p.add_subparsers(dest="data_command", metavar="ACTION")
    m = options.add_command(actions, "make", help, None, EPILOG, [games, options.game()], run)
    help = "for perception, sequence, imitation (default frames)"
    m.add_argument("--kind", choices=KINDS, default="frames", help=help)
    m.add_argument("--out", required=True, help="output .npz file")
    help = "range of a game's random-action probability (default 0 1; expert 0 0.3)"
    share, envs = number(0, 1, kind=float), number(1, MAX_NUM_ENVS)
    m.add_argument("--random-prob", type=share, nargs=2, metavar=("LOW", "HIGH"), help=help)
    m.add_argument("--num-envs", type=envs, default=64, help="games played at once (speed only)")


def run(args: argparse.Namespace) -> int:
    """Generate, save and summarise a dataset."""
    if args.random_prob is not None and args.random_prob[0] > args.random_prob[1]:
        raise UserError(f"--random-prob LOW HIGH: LOW must be <= HIGH, got {args.random_prob}")
    if not args.out.endswith(".npz"):
        raise UserError(f"--out must end in .npz, got {args.out!r}")
    params = CatchParams(**options.game_overrides(args))
    start = time.perf_counter()
    try:
        mix, envs = args.random_prob, args.num_envs  # make_dataset's own default mix unless given
        ds = make_dataset(args.kind, args.games, args.seed, params, random_prob=mix, num_envs=envs)
        save_dataset(ds, args.out)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    wins = float((ds.rewards > 0).sum() / max((ds.rewards != 0).sum(), 1))
    print(
        f"{args.out}: {args.kind}, {ds.num_games} games x {ds.steps + 1} observations, "
        f"balls caught {wins:.1%}, {time.perf_counter() - start:.1f} s"
    )
    return 0
