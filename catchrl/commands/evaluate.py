"""'catchrl eval': any saved agent (or a scripted policy) plays N seeded games greedily."""

from __future__ import annotations

import argparse
import json

from catchrl.agents.policy import Agent
from catchrl.api import SCRIPTED, evaluate, load_agent
from catchrl.commands import options
from catchrl.commands.options import game_overrides
from catchrl.evaluation import TEST_SEED

EPILOG = """examples:
  catchrl eval runs/dqn-pixels-20261122-150000        # a run directory
  catchrl eval runs/x/model.keras --obs-type pixels    # a Keras Q-network file
  catchrl eval oracle --games 10000                    # the ball-tracking upper bound
  catchrl eval random --games 10000                    # the ~17 % floor
  catchrl eval runs/sb3-ppo/model.zip --sb3            # an SB3 file (unpickles code!)

Game j is seeded SEED + j: the same --seed, the same balls for every policy.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl eval``."""
    games = options.games(1000, TEST_SEED, "seed of game 0 (default: the test games, 2**41)")
    help = "evaluate a saved agent or a scripted policy"
    p = options.add_command(sub, "eval", help, __doc__, EPILOG, [options.agent(), games], run)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def load(args: argparse.Namespace) -> Agent:
    """Check the game, then load the agent ``args.agent`` names."""
    # A scripted policy plays the state game; a run's own game is known once it is loaded.
    obs_type = args.obs_type or ("state" if args.agent in SCRIPTED else None)
    agent = load_agent(args.agent, args.sb3, args.model, **game_overrides(args, obs_type))
    if agent.source and not getattr(args, "json", False):  # (--json: its "model" field)
        print(f"{agent.name}: loaded {agent.source}")
    return agent


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the win rate with its 95 % interval."""
    agent = load(args)
    result = evaluate(agent, args.games, args.seed)
    if args.json:
        model = agent.source.split(",")[0]  # the file's name, plain
        figures = {"agent": agent.name, "model": model, "seed": args.seed, **result.to_dict()}
        print(json.dumps(figures))
    else:
        print(f"{agent.name}: {result.summary()}")
    return 0
