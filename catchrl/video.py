"""Games played in the window ('catchrl play', 'watch'), or written as a GIF/MP4, a frame a step."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from catchrl.agents.policy import Agent
from catchrl.envs.render import screen_scale
from catchrl.envs.window import CatchWindow, WindowClosed
from catchrl.errors import CatchrlError

END_SECONDS = 3.0
"""Seconds a window shows the closing screen of an agent's games unless a key closes it."""
END_FRAMES = 45
"""Frames of the closing screen at the end of a video (1.5 s at 30 fps)."""


@dataclass
class GamesPlayed:
    """What :func:`play_games` played: ``caught`` of the ``balls`` played, out of ``total``."""

    total: int = 0
    caught: int = 0
    balls: int = 0
    steps: int = 0
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    quit_reason: str | None = None
    """Why it stopped early ("ESC pressed", "window closed"), or None."""

    def score_line(self) -> str:
        """``Score: caught/total``, and how far it got if it was quit early."""
        line = f"Score: {self.caught}/{self.total}"
        if self.quit_reason:
            line += f" (quit after {self.balls} of {self.total} balls: {self.quit_reason})"
        return line


def play_games(
    env: Any,
    agent: Agent | None,
    window: CatchWindow | None,
    games: int = 1,
    seed: int | None = None,
    record: bool = False,
) -> GamesPlayed:
    """Play ``games`` games (game ``g`` seeded ``seed + g``) in ``window``; ``agent`` None: keys."""
    played = GamesPlayed(total=games * env.params.balls_per_game)

    def status(game: int) -> str | None:  # one game: the book's band, "Score: s/N, Ball: n"
        caught, balls = played.caught + env.state.caught, played.balls + env.state.balls_played
        return None if games == 1 else f"Score: {caught}/{balls}, Game: {game + 1}"

    try:
        for game in range(games):
            obs, _ = env.reset(seed=None if seed is None else seed + game)
            if window is not None:
                window.draw(env.state, status(game))
            try:  # finally: a game quit midway counts what it played
                terminated = False
                while not terminated:
                    if window is not None:
                        window.poll()
                    if agent is None:
                        action, q = window.held_action(), None
                    else:
                        action = agent.act(obs, env.state)
                        q = None if agent.q_values is None else agent.q_values(obs)
                    obs, _, terminated, _, _ = env.step(action)
                    played.steps += 1
                    if window is not None:
                        window.draw(env.state, status(game), q, None if agent is None else action)
                        if record:
                            played.frames.append(_pixels(window))
            finally:
                played.caught += env.state.caught
                played.balls += env.state.balls_played
        if window is not None:
            title = "Game over!" if games == 1 else f"{games} games played"
            window.end_screen(title, f"Score: {played.caught}/{played.balls}")
            if record:
                played.frames += [_pixels(window)] * END_FRAMES
    except WindowClosed as e:
        played.quit_reason = str(e)
    return played


def _pixels(window: CatchWindow) -> np.ndarray:
    """What the window shows now: RGB ``[H, W, 3]`` uint8, band included."""
    return window.pg.surfarray.array3d(window.surface).swapaxes(0, 1)


def open_window(env: Any, fps: int, title: str) -> CatchWindow:
    """A window for ``env``'s game; no display (or a refused one) is a :class:`CatchrlError`."""
    import pygame

    try:
        return CatchWindow(env.params, fps=fps, scale=screen_scale(env.params), title=title)
    except (RuntimeError, pygame.error) as e:
        raise CatchrlError(f"cannot open the Catch window: {e}") from e


def play_agent(
    agent: Agent, games: int, seed: int, fps: int = 0, record: bool = False
) -> GamesPlayed:
    """The agent's games in a window; ``record``: unseen (SDL's dummy driver), every frame kept."""
    env = agent.make_env()
    dummy = mock.patch.dict(os.environ, SDL_VIDEODRIVER="dummy")  # os.environ restored after
    with dummy if record else contextlib.nullcontext():
        window = open_window(env, fps, f"catchrl — {agent.name}")
        with contextlib.closing(window):
            played = play_games(env, agent, window, games, seed, record)
            if not record and played.quit_reason is None:
                window.linger(END_SECONDS)
    return played


def check_video_path(path: Path, option: str = "--video") -> None:
    """Refuse a path that is not .gif/.mp4, in a missing folder, or whose writer is missing."""
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise CatchrlError(f"{option} {path}: the file must end in .gif or .mp4")
    if not path.parent.is_dir():
        raise CatchrlError(f"{option} {path}: folder {str(path.parent)!r} does not exist")
    for module in ("imageio", "imageio_ffmpeg") if suffix == ".mp4" else ("imageio",):
        if importlib.util.find_spec(module) is None:
            raise CatchrlError(
                f"writing {suffix} video needs {module.replace('_', '-')}, which is not "
                "installed: pip install 'catchrl[plot]'"
            )


def encode_video(frames: list[np.ndarray], fps: int = 30, suffix: str = ".gif") -> bytes:
    """RGB frames ``[H, W, 3]`` uint8 as a looping GIF (frame times in 10 ms) or an H.264 MP4."""
    if not frames:
        raise CatchrlError("no frames to write")
    import imageio.v3 as iio

    video = np.stack(frames)  # [T, H, W, 3]
    if suffix == ".gif":
        return iio.imwrite("<bytes>", video, extension=".gif", duration=1000 / fps, loop=0)
    even = ((0, 0), (0, video.shape[1] % 2), (0, video.shape[2] % 2), (0, 0))  # for yuv420p
    video = np.pad(video, even)
    ffmpeg = {"plugin": "FFMPEG", "macro_block_size": 1, "ffmpeg_log_level": "error"}
    return iio.imwrite("<bytes>", video, extension=".mp4", fps=fps, **ffmpeg)
