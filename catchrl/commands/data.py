"""``catchrl data``: generate labelled datasets from the game (``catchrl data make``)."""

from __future__ import annotations

import argparse
import time

from catchrl.cli import UserError
from catchrl.commands.options import (
    add_game_options,
    add_games,
    check_each,
    check_game_options,
    check_range,
    check_seed,
)
from catchrl.config import MAX_NUM_ENVS

EPILOG = """examples:
  catchrl data make --kind frames --games 1000 --seed 0 --out data/frames.npz
  catchrl data make --kind frames --games 100 --seed 1000000 --out data/frames-test.npz
  catchrl data make --kind trajectories --games 5000 --drift 5 --out data/traj-drift5.npz

Game g plays seed SEED + g: give held-out sets seeds far from the training ones.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl data make``."""
    p = sub.add_parser("data", help="generate labelled datasets from the game", description=__doc__)
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    m = dsub.add_parser(
        "make",
        help="play seeded games (the oracle mixed with random actions) and save them labelled",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument(
        "--kind",
        choices=("frames", "trajectories", "expert"),
        default="frames",
        help="frames (perception), trajectories (sequence), expert (imitation); default frames",
    )
    add_games(m, 1000, 0, "seed of game 0 (default 0)")
    m.add_argument("--out", required=True, help="output .npz file")
    add_game_options(m, model=False, drift=0, balls_per_game=1, walls="clamp", spawn="visible")
    m.add_argument(
        "--random-prob",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="range of a game's random-action probability (default 0 1; expert 0 0.3)",
    )
    m.add_argument("--num-envs", type=int, default=64, help="games played at once (speed only)")
    m.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run(args: argparse.Namespace) -> int:
    """Generate, save and summarise a dataset."""
    from catchrl.envs import CatchParams
    from catchrl.supervised.datasets import make_dataset, save_dataset

    check_range("--games", args.games, 0, above=True)
    check_seed("--seed", args.seed)
    check_game_options(args)
    check_range("--num-envs", args.num_envs, 1, MAX_NUM_ENVS)
    if args.random_prob is not None:
        check_each("--random-prob", args.random_prob, 0.0, 1.0)
        if args.random_prob[0] > args.random_prob[1]:
            raise UserError(f"--random-prob LOW HIGH: LOW must be <= HIGH, got {args.random_prob}")
    if not args.out.endswith(".npz"):
        raise UserError(f"--out must end in .npz, got {args.out!r}")
    params = CatchParams(
        drift=args.drift, balls_per_game=args.balls_per_game, walls=args.walls, spawn=args.spawn
    )
    start = time.perf_counter()
    try:
        mix = tuple(args.random_prob) if args.random_prob else None
        ds = make_dataset(
            args.kind, args.games, args.seed, params, random_prob=mix, num_envs=args.num_envs
        )
        save_dataset(ds, args.out)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    wins = float((ds.rewards > 0).sum() / max((ds.rewards != 0).sum(), 1))
    print(
        f"{args.out}: {args.kind}, {ds.num_games} games x {ds.steps + 1} observations, "
        f"balls caught {wins:.1%}, {time.perf_counter() - start:.1f} s"
    )
    return 0
