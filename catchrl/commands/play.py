"""'catchrl play': a person plays Catch with the arrow keys, as in the book's human game.

By default the book's: 100 balls, paddle stopped at the walls, 30 frames per second.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from catchrl.api import SCRIPTED, load_agent
from catchrl.commands import options
from catchrl.commands.options import SEED, number
from catchrl.envs import CatchEnv
from catchrl.errors import CatchrlError, UserError
from catchrl.video import END_SECONDS, open_window, play_games

EPILOG = """\
keys: left / right arrow move the paddle (hold to keep moving); ESC quits (the score so far
is printed); Enter, Space or ESC close the window once the game is over (3 s with --policy).

examples:
  catchrl play --balls 20 --fps 20           a shorter, slower game
  catchrl play --drift 5 --seed 1            balls drift sideways and bounce off the walls
  catchrl play --walls book --spawn book     the book's trained game, quirks included
  catchrl play --policy random --headless    a random player's score, no window
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl play``."""
    help = "play Catch with the arrow keys (or watch a scripted policy)"
    game = options.game(balls_per_game=100)
    p = options.add_command(sub, "play", help, __doc__, EPILOG, [game], run)
    p.add_argument("--seed", type=SEED, help="seed of the balls, to replay a game")
    p.add_argument("--policy", choices=SCRIPTED, help="a scripted player instead of the keys")
    p.add_argument("--headless", action="store_true", help="no window (needs --policy)")
    fps = number(0, note="0 = as fast as possible")
    p.add_argument("--fps", type=fps, default=30, help="frames per second (book: 30; 0: no wait)")
    p.add_argument("--screenshot", metavar="PATH", help="save the window (.png) at the end")
    linger = number(0, kind=float, allow_inf=True, note="seconds")
    p.add_argument("--linger", type=linger, metavar="S", help="seconds the final score stays up")


def run(args: argparse.Namespace) -> int:
    """Play one game; print ``Score: s/N`` (also when the person quits early)."""
    if args.headless and args.policy is None:
        raise UserError("--headless needs --policy oracle|random: a person plays in the window")
    if args.headless and args.screenshot:
        raise UserError("--screenshot needs the window; drop --headless")
    folder = Path(args.screenshot or ".").parent
    if not folder.is_dir():
        raise UserError(f"--screenshot: folder {str(folder)!r} does not exist")
    game = {"obs_type": "state", **options.game_overrides(args)}  # the state game: no frames
    env = CatchEnv(**game)
    agent = load_agent(args.policy, **game) if args.policy else None
    if args.headless:
        print(play_games(env, agent, None, seed=args.seed).score_line())
        return 0
    try:
        window = open_window(env, args.fps, "catchrl play — Catch")
    except CatchrlError as e:
        raise UserError(f"{e}; or use --headless with --policy") from e
    with contextlib.closing(window):
        played = play_games(env, agent, window, seed=args.seed)
        if args.screenshot and window.closed:
            print("catchrl play: the window was closed; no screenshot saved", file=sys.stderr)
        elif args.screenshot:
            try:
                window.screenshot(args.screenshot)
            except Exception as e:  # pygame.error or OSError: an unknown suffix, unwritable
                raise UserError(f"--screenshot: cannot save {args.screenshot!r}: {e}") from e
        if played.quit_reason is None:
            default = None if agent is None else END_SECONDS
            window.linger(default if args.linger is None else args.linger)
    print(played.score_line())
    return 0
