"""``catchrl watch``: a saved agent plays in the pygame window, its Q-values shown."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from catchrl.cli import UserError
from catchrl.commands.checks import check_range
from catchrl.commands.evaluate import add_game_options, check_options, load

EPILOG = """examples:
  catchrl watch runs/dqn-pixels-20261122-150000            # 3 games in a window
  catchrl watch runs/x --games 5 --fps 10                   # slower
  catchrl watch runs/x --gif docs/agent.gif --games 2       # headless: write a GIF
  catchrl watch oracle --balls 20                           # the ball-tracking policy

The window shows the score line, the agent's Q-values for left/stay/right and
the chosen action. ESC or closing the window stops.
"""

ACTION_NAMES = ("LEFT", "STAY", "RIGHT")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catchrl watch``."""
    p = sub.add_parser(
        "watch",
        help="watch a saved agent play in a window (or write a GIF)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("agent", help="run directory, model file, or oracle/random")
    p.add_argument("--games", type=int, default=3, help="games to play (default 3)")
    p.add_argument("--fps", type=int, default=30, help="frames per second (0: no wait)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first game")
    p.add_argument("--gif", type=Path, help="write the games to this GIF (or .mp4) headless")
    p.add_argument(
        "--sb3",
        action="store_true",
        help="allow loading an SB3 .zip (it unpickles code: trusted files only)",
    )
    add_game_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Play ``--games`` games in the window (or into ``--gif``); print the score."""
    from catchrl.envs import BatchState, CatchEnv

    check_options(args)  # --games, --seed and the game, as eval
    check_range("--fps", args.fps, 0, note="0 = no wait")
    if args.gif is not None:
        if args.gif.suffix.lower() not in (".gif", ".mp4"):
            raise UserError(f"--gif {args.gif}: the file must end in .gif or .mp4")
        if not args.gif.parent.is_dir():
            raise UserError(f"--gif {args.gif}: folder {str(args.gif.parent)!r} does not exist")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # no display needed for a file
    loaded = load(args)
    from catchrl.envs.window import CatchWindow, WindowClosed

    env = CatchEnv(**loaded.env_kwargs)
    try:
        window = CatchWindow(
            env.params,
            fps=0 if args.gif else args.fps,
            scale=env._screen_scale(),
            title=f"catchrl — {loaded.name}",
        )
    except RuntimeError as e:
        raise UserError(str(e)) from e
    frames: list[np.ndarray] = []
    caught = balls = 0
    states = BatchState.zeros(1)
    try:
        for game in range(args.games):
            obs, _ = env.reset(seed=args.seed + game)
            terminated = False
            while not terminated:
                states.set(0, env.state)
                action = int(loaded.policy(obs[None], states)[0])
                lines = [f"game {game + 1}/{args.games}", f"action: {ACTION_NAMES[action]}"]
                if loaded.q_values is not None:
                    q = loaded.q_values(obs[None])[0]
                    lines.insert(
                        1,
                        "Q  "
                        + "  ".join(
                            f"{n[0]}:{v:+.3f}" for n, v in zip(ACTION_NAMES, q, strict=True)
                        ),
                    )
                obs, _, terminated, _, info = env.step(action)
                window.draw(env.state, lines)
                window.poll()
                if args.gif:
                    import pygame

                    frames.append(pygame.surfarray.array3d(window.surface).swapaxes(0, 1))
            caught += info["caught"]
            balls += info["caught"] + info["missed"]
    except WindowClosed:
        pass
    finally:
        window.close()
        env.close()
    print(f"{loaded.name}: caught {caught}/{balls}")
    if args.gif:
        _write_video(args.gif, frames, args.fps or 30)
        print(f"wrote {args.gif} ({len(frames)} frames)")
    return 0


def _write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    try:
        import imageio.v3 as iio
    except ImportError as e:
        raise UserError("writing a GIF/MP4 needs imageio: pip install 'catchrl[plot]'") from e
    stride = 2 if len(frames) > 400 else 1
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, np.stack(frames[::stride]), duration=1000 * stride / fps, loop=0)
    else:
        iio.imwrite(path, np.stack(frames), fps=fps)
