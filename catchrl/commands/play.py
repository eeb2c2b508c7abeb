"""``catchrl play``: a person plays Catch with the arrow keys, as in the book's human game.

The game is the book's human-playable one by default: 100 balls, the paddle
clamped at the walls, "Score: s/N, Ball: n" in a band under the field, 30 frames per
second. Each frame asks the keyboard (or a scripted policy) for one action and
advances the game with :func:`catchrl.envs.step_state` (the core's step of a
batch of one), the dynamics the agents train on. It ends on a closing screen;
the final score is printed as ``Score: s/N``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from catchrl.cli import UserError
from catchrl.commands.checks import check_game_options, check_range, check_seed
from catchrl.envs.core import CatchParams, CatchState, reset_state, step_state

if TYPE_CHECKING:
    from catchrl.envs.window import CatchWindow

__all__ = ["POLICIES", "PlayResult", "PlaySession", "add_parser", "make_params", "run"]

POLICIES = ("oracle", "random")
POLICY_LINGER_S = 3.0
"""Seconds the final score of a scripted game stays on screen by default."""

EPILOG = """\
keys:
  left / right arrow   move the paddle (hold to keep moving)
  ESC                  quit now (the score so far is printed)
  Enter, Space, ESC    close the window once the game is over

examples:
  catchrl play                               100 balls with the arrow keys
  catchrl play --balls 20 --fps 20           a shorter, slower game
  catchrl play --drift 5 --seed 1            balls drift sideways and bounce off the walls
  catchrl play --book-walls --book-spawn     the book's trained game, quirks included
  catchrl play --policy oracle --balls 10    watch the oracle play
  catchrl play --policy random --headless --balls 1000
                                             a random player's score, no window
  catchrl play --policy oracle --screenshot catch.png
                                             save the window at the end of the game
"""


class StatePolicy(Protocol):
    """What ``--policy`` needs from a scripted policy (see :mod:`catchrl.agents.scripted`)."""

    def act_state(self, state: CatchState) -> Any:
        """Return the action (0 left, 1 stay, 2 right) for one game state."""


@dataclass(frozen=True)
class PlayResult:
    """The outcome of one game of ``catchrl play``.

    Attributes:
        caught: Balls caught.
        balls: Balls in the game (``--balls``).
        balls_played: Balls decided before the game ended (fewer if the person quit).
        quit_reason: Why the game stopped early (``"ESC pressed"``, ``"window closed"``),
            or None if every ball was played.

    """

    caught: int
    balls: int
    balls_played: int
    quit_reason: str | None = None

    def score_line(self) -> str:
        """``Score: s/N``, plus how far the game got if it was quit early."""
        line = f"Score: {self.caught}/{self.balls}"
        if self.quit_reason:
            line += f" (quit after {self.balls_played} of {self.balls} balls: {self.quit_reason})"
        return line


class PlaySession:
    """One game of Catch, advanced one frame per :meth:`step`.

    Args:
        params: The game.
        rng: The game's generator (ball positions).
        window: The window to draw in and read the keyboard from; None plays headless.
        policy: Chooses the actions instead of the keyboard; required without a window.

    """

    def __init__(
        self,
        params: CatchParams,
        rng: np.random.Generator,
        window: CatchWindow | None = None,
        policy: StatePolicy | None = None,
    ) -> None:
        if window is None and policy is None:
            raise ValueError("PlaySession needs a window (keyboard) or a policy")
        self.params, self.rng, self.window, self.policy = params, rng, window, policy
        self.state = reset_state(params, rng)
        self.over = False
        self.quit_reason: str | None = None
        if window is not None:
            window.draw(self.state)

    def step(self) -> bool:
        """Play one frame: read the input, step the game, draw it.

        Returns:
            True while the game goes on; False once every ball is played or the
            person quit (ESC or closing the window).

        """
        if self.over:
            return False
        window = self.window
        if window is not None:
            from catchrl.envs.window import WindowClosed

            try:
                window.poll()
            except WindowClosed as e:
                self.quit_reason, self.over = str(e), True
                return False
        if self.policy is not None:
            action = int(self.policy.act_state(self.state))
        else:
            assert window is not None
            action = window.held_action()
        self.state, _, terminated = step_state(self.params, self.state, action, self.rng)
        if window is not None:
            window.draw(self.state)
        self.over = terminated
        return not terminated

    def play(self) -> PlayResult:
        """Play frames until the game is over or the person quits."""
        while self.step():
            pass
        return self.result()

    def result(self) -> PlayResult:
        """Return the score so far."""
        s = self.state
        return PlayResult(
            caught=s.caught,
            balls=self.params.balls_per_game,
            balls_played=s.balls_played,
            quit_reason=self.quit_reason,
        )


def make_params(args: argparse.Namespace) -> CatchParams:
    """Build the game ``args`` ask for.

    Raises:
        UserError: The options describe no valid game (e.g. too much drift).

    """
    try:
        return CatchParams(
            balls_per_game=args.balls,
            drift=args.drift,
            walls="book" if args.book_walls else "clamp",
            spawn="book" if args.book_spawn else "visible",
        )
    except ValueError as e:
        raise UserError(str(e)) from e


def _make_policy(name: str, params: CatchParams, seed: int | None) -> StatePolicy:
    """Build a scripted policy by name; a random one gets a stream derived from ``seed``."""
    try:
        from catchrl.agents.scripted import OraclePolicy, RandomPolicy
    except ImportError as e:
        raise UserError(
            f"--policy needs catchrl.agents.scripted, which failed to import: {e}"
        ) from e
    if name == "oracle":
        return OraclePolicy(params)
    policy_seed = None
    if seed is not None:  # a stream independent of the game's own default_rng(seed)
        policy_seed = int(np.random.SeedSequence(seed).spawn(1)[0].generate_state(1)[0])
    return RandomPolicy(policy_seed)


def _open_window(params: CatchParams, fps: int) -> CatchWindow:
    """Open the game window, turning "no display" into a one-line error."""
    import pygame

    from catchrl.envs.window import CatchWindow

    try:
        return CatchWindow(params, fps=fps, title="catchrl play — Catch")
    except RuntimeError as e:
        raise UserError(f"{e}; or use --headless with --policy") from e
    except pygame.error as e:  # the display refused the window
        raise UserError(f"cannot open the Catch window: {e}") from e


def _check_args(args: argparse.Namespace) -> None:
    """Refuse option combinations that cannot work, before anything is opened."""
    if args.headless and args.policy is None:
        raise UserError(
            "--headless needs --policy oracle|random: "
            "a person needs the window to play with the keyboard"
        )
    if args.headless and args.screenshot:
        raise UserError("--screenshot needs the window; drop --headless")
    check_range("--fps", args.fps, 0, note="0 = as fast as possible")
    check_range("--linger", args.linger, 0, allow_inf=True, note="seconds")
    check_seed("--seed", args.seed)
    check_game_options(args)  # --balls and --drift, in the book's world
    if args.screenshot and not Path(args.screenshot).parent.is_dir():
        raise UserError(
            f"--screenshot: folder {str(Path(args.screenshot).parent)!r} does not exist"
        )


def _finish_window(window: CatchWindow, session: PlaySession, args: argparse.Namespace) -> None:
    """Show the final score, save the screenshot, keep the window up for a while."""
    result = session.result()
    if not window.closed and result.quit_reason is None:
        window.end_screen("Game over!", f"Score: {result.caught}/{result.balls}")
    if args.screenshot:
        if window.closed:
            print("catchrl play: the window was closed; no screenshot saved", file=sys.stderr)
        else:
            import pygame

            try:
                window.screenshot(args.screenshot)
            except (pygame.error, OSError) as e:  # unknown suffix, unwritable file
                raise UserError(f"--screenshot: cannot save {args.screenshot!r}: {e}") from e
    if result.quit_reason is None:
        linger = args.linger
        if linger is None:
            linger = None if args.policy is None else POLICY_LINGER_S
        window.linger(linger)


def run(args: argparse.Namespace) -> int:
    """Play one game; print ``Score: s/N``; exit code 0 (also when the person quits early)."""
    _check_args(args)
    params = make_params(args)
    policy = _make_policy(args.policy, params, args.seed) if args.policy else None
    rng = np.random.default_rng(args.seed)
    if args.headless:
        result = PlaySession(params, rng, policy=policy).play()
    else:
        window = _open_window(params, args.fps)
        try:
            session = PlaySession(params, rng, window=window, policy=policy)
            result = session.play()
            _finish_window(window, session, args)
        finally:
            window.close()
    print(result.score_line())
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``catchrl play``."""
    parser = subparsers.add_parser(
        "play",
        help="play Catch with the arrow keys (or watch a scripted policy)",
        description="Play Catch as in the book's human game: catch the falling balls with\n"
        "the paddle. Prints the final score as 'Score: s/N'.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    game = parser.add_argument_group("the game")
    game.add_argument(
        "--balls",
        type=int,
        default=100,
        metavar="N",
        help="balls per game (default: 100, the book's human game)",
    )
    game.add_argument(
        "--book-walls",
        action="store_true",
        help="the trained game's 'bounce' walls: moving into a wall puts the "
        "paddle one step back from it (default: the paddle stops at the wall)",
    )
    game.add_argument(
        "--book-spawn",
        action="store_true",
        help="balls start anywhere in x = 0..400 as in the book, so some are "
        "partly off screen and x = 400 cannot be caught "
        "(default: every ball starts on screen)",
    )
    game.add_argument(
        "--drift",
        type=int,
        default=0,
        metavar="N",
        help="largest sideways ball speed in px per step; balls bounce off the "
        "walls (default: 0, straight down as in the book)",
    )
    game.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the ball positions, to replay the same game (default: a new game every time)",
    )
    who = parser.add_argument_group("who plays, and how it is shown")
    who.add_argument(
        "--policy",
        choices=POLICIES,
        default=None,
        help="let a scripted policy play instead of the keyboard: 'oracle' "
        "tracks the ball, 'random' presses keys at random",
    )
    who.add_argument(
        "--headless", action="store_true", help="no window, just the final score (needs --policy)"
    )
    who.add_argument(
        "--fps",
        type=int,
        default=30,
        help="frames (game steps) per second (default: 30, as in the book; "
        "0 = as fast as possible)",
    )
    who.add_argument(
        "--screenshot",
        metavar="PATH",
        default=None,
        help="save the window as an image (e.g. .png) when the game ends",
    )
    who.add_argument(
        "--linger",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long the final score stays on screen (default: until Enter, "
        f"Space, ESC or closing the window; {POLICY_LINGER_S:g} s with "
        "--policy; 0 closes at once)",
    )
    parser.set_defaults(func=run)
    return parser
