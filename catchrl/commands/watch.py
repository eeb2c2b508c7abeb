"""'catchrl watch': a saved agent plays in the pygame window, its Q-values shown."""

from __future__ import annotations

import argparse
from pathlib import Path

from catchrl.api import record, watch
from catchrl.commands import options
from catchrl.commands.evaluate import load
from catchrl.video import check_video_path

EPILOG = """examples:
  catchrl watch runs/dqn-pixels-20261122-150000            # 3 games in a window
  catchrl watch runs/x --video docs/agent.gif --games 2     # headless: write a GIF
  catchrl watch oracle --balls 20 --fps 10                  # the ball-tracking policy, slower

The band under the field shows the score and the Q-values as bars; ESC stops. A video
(pip install 'catchrl[plot]') has a frame per step, played at --fps (30 if 0).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl watch``."""
    games = options.games(3, 0, "seed of the first game (default 0)")
    help = "watch a saved agent play in a window (or write a GIF/MP4)"
    p = options.add_command(sub, "watch", help, __doc__, EPILOG, [options.agent(), games], run)
    fps = options.number(0, note="0 = no wait")
    p.add_argument("--fps", type=fps, default=30, help="frames per second (0: no wait)")
    help = "write the games to FILE (.gif or .mp4), headless, instead of a window"
    p.add_argument("--video", "--gif", dest="video", type=Path, metavar="FILE", help=help)


def run(args: argparse.Namespace) -> int:
    """Play ``--games`` games in the window (or into ``--video``); print the score."""
    if args.video is not None:  # before anything is loaded
        check_video_path(args.video)
    agent = load(args)
    if args.video is None:
        played = watch(agent, args.games, args.seed, args.fps)
    else:
        played = record(agent, args.video, args.games, args.seed, args.fps or 30)
    print(f"{agent.name}: caught {played.caught}/{played.balls}")
    if args.video is not None:
        print(f"wrote {args.video} ({len(played.frames)} frames)")
    return 0
