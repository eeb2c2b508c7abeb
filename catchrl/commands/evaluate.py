"""``catchrl eval``: any saved agent (or a scripted policy) plays N seeded games greedily."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from catchrl.cli import UserError
from catchrl.commands.checks import check_game_options, check_range
from catchrl.commands.options import (
    add_game_options,
    add_games,
    add_json,
    add_trust_sb3,
    game_overrides,
)

MAX_GAME_SEED = 2**62
"""Largest ``--seed`` of an evaluation (not 32-bit: the test games start at 2**41)."""

if TYPE_CHECKING:
    from catchrl.policies import LoadedPolicy

EPILOG = """examples:
  catchrl eval runs/dqn-pixels-20261122-150000        # a run directory
  catchrl eval runs/x/model.keras --obs-type pixels    # a Keras Q-network file
  catchrl eval oracle --games 10000                    # the ball-tracking upper bound
  catchrl eval random --games 10000                    # the ~17 % floor
  catchrl eval runs/sb3-ppo/model.zip --sb3            # an SB3 file (unpickles code!)

Game j of an evaluation is seeded with SEED + j: every policy evaluated with the
same --seed plays the same balls. The default seed is the test games' (2**41),
which no part of training plays: training-time evaluations use the validation
games (2**40). A run directory loads its kept model, best.keras (best.zip),
unless --model final; its first line says which. The game (obs type,
variants) comes from the run's config unless given here.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl eval``."""
    p = sub.add_parser(
        "eval",
        help="evaluate a saved agent or a scripted policy",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("agent", help="run directory, model file, or oracle/random")
    add_games(p, 1000, None, "seed of game 0 (default: the test games, 2**41)")
    add_trust_sb3(p)
    add_json(p)
    add_game_options(p)
    p.set_defaults(func=run)


def check_options(args: argparse.Namespace) -> None:
    """Refuse bad ``--games``, ``--seed`` and game options before anything is loaded."""
    from catchrl.evaluation import MAX_EVAL_GAMES
    from catchrl.policies import SCRIPTED

    check_range("--games", args.games, 0, MAX_EVAL_GAMES - 1, above=True)
    check_range("--seed", args.seed, 0, MAX_GAME_SEED, note="game seeds are below 2**62")
    # A scripted policy plays the state game; a run's own game is known once it is loaded.
    check_game_options(args, args.obs_type or ("state" if args.agent in SCRIPTED else None))


def load(args: argparse.Namespace) -> LoadedPolicy:
    """The policy ``args.agent`` names, in its game with the options applied.

    Raises:
        UserError: It cannot be loaded, or the game with these options is not valid.

    """
    from catchrl.policies import load_policy

    try:
        loaded = load_policy(args.agent, game_overrides(args), allow_sb3=args.sb3, which=args.model)
    except ValueError as e:  # PolicyLoadError, or the game refusing the options
        raise UserError((str(e).strip().splitlines() or [type(e).__name__])[0]) from e
    if loaded.source and not getattr(args, "json", False):  # (--json: its "model" field)
        print(f"{loaded.name}: loaded {loaded.source}")
    return loaded


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the win rate with its 95 % interval."""
    from catchrl.evaluation import TEST_SEED, evaluate

    check_options(args)
    loaded = load(args)
    seed = TEST_SEED if args.seed is None else args.seed
    result = evaluate(loaded.policy, games=args.games, seed=seed, **loaded.env_kwargs)
    if args.json:
        record = {"agent": loaded.name, "model": loaded.source, "seed": seed}
        print(json.dumps({**record, **result.to_dict()}))
    else:
        print(f"{loaded.name}: {result.summary()}")
    return 0
