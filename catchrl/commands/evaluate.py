"""``catchrl eval``: any saved agent (or a scripted policy) plays N seeded games greedily."""

from __future__ import annotations

import argparse
import json

from catchrl.commands.options import (
    add_game_options,
    add_games,
    add_json,
    add_trust_sb3,
    check_game_options,
    check_range,
    game_overrides,
)
from catchrl.policies import SCRIPTED, Agent

MAX_GAME_SEED = 2**62
"""Largest ``--seed`` of an evaluation (not 32-bit: the test games start at 2**41)."""

EPILOG = """examples:
  catchrl eval runs/dqn-pixels-20261122-150000        # a run directory
  catchrl eval runs/x/model.keras --obs-type pixels    # a Keras Q-network file
  catchrl eval oracle --games 10000                    # the ball-tracking upper bound
  catchrl eval random --games 10000                    # the ~17 % floor
  catchrl eval runs/sb3-ppo/model.zip --sb3            # an SB3 file (unpickles code!)

Game j is seeded SEED + j: the same --seed, the same balls for every policy. A run
directory loads its kept model (best.*) unless --model final, in the run's game.
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


def load(args: argparse.Namespace) -> Agent:
    """Check ``--games``, ``--seed`` and the game, then load the agent ``args.agent`` names."""
    from catchrl.evaluation import MAX_EVAL_GAMES
    from catchrl.policies import load_policy

    check_range("--games", args.games, 0, MAX_EVAL_GAMES - 1, above=True)
    check_range("--seed", args.seed, 0, MAX_GAME_SEED, note="game seeds are below 2**62")
    # A scripted policy plays the state game; a run's own game is known once it is loaded.
    check_game_options(args, args.obs_type or ("state" if args.agent in SCRIPTED else None))
    if getattr(args, "video", None) is not None:  # watch: before anything is loaded
        from catchrl.video import check_video_path

        check_video_path(args.video)
    agent = load_policy(args.agent, game_overrides(args), allow_sb3=args.sb3, which=args.model)
    if agent.source and not getattr(args, "json", False):  # (--json: its "model" field)
        print(f"{agent.name}: loaded {agent.source}")
    return agent


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the win rate with its 95 % interval."""
    from catchrl.evaluation import TEST_SEED, evaluate

    agent = load(args)
    seed = TEST_SEED if args.seed is None else args.seed
    result = evaluate(agent.policy, games=args.games, seed=seed, **agent.env_kwargs)
    if args.json:
        model = agent.source.split(",")[0]  # the file's name, plain
        print(json.dumps({"agent": agent.name, "model": model, "seed": seed, **result.to_dict()}))
    else:
        print(f"{agent.name}: {result.summary()}")
    return 0
