"""Games of a loaded policy drawn as the window shows them, and written as GIF or MP4 video.

One loop plays the games for ``catchrl watch`` (in a window, or headless into
a file) and for :func:`catchrl.show` (inline in Jupyter): each step draws the
field and, in the band under it, the score across games ("Score: 2/3, Game: 3"),
the policy's Q-values as bars (where it has them) and the action it chose; the
games end on a closing screen with the total score, as ``catchrl play`` does.
A recording holds **one frame per env step**, the frame drawn after the step,
then :data:`END_FRAMES` frames of the closing screen.

Video needs the ``plot`` extra: ``imageio`` (GIF through Pillow) and
``imageio-ffmpeg`` (MP4, H.264, with its own ffmpeg binary).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from catchrl.envs.window import ACTION_NAMES
from catchrl.errors import CatchrlError

if TYPE_CHECKING:
    from catchrl.envs.window import CatchWindow
    from catchrl.policies import LoadedPolicy

__all__ = [
    "ACTION_NAMES",
    "END_FRAMES",
    "END_SECONDS",
    "VIDEO_SUFFIXES",
    "GamesPlayed",
    "VideoError",
    "check_video_path",
    "encode_gif",
    "headless_window",
    "play_games",
    "write_video",
]

VIDEO_SUFFIXES = (".gif", ".mp4")
END_SECONDS = 3.0
"""Seconds a window shows the closing screen unless a key closes it (``catchrl play --policy``)."""
END_FRAMES = 45
"""Frames of the closing screen at the end of a video (1.5 s at 30 fps)."""


class VideoError(CatchrlError):
    """A video cannot be written: a bad path, or the video packages are missing."""


@dataclass
class GamesPlayed:
    """What :func:`play_games` played.

    Attributes:
        caught: Balls caught.
        balls: Balls played.
        steps: Env steps taken.
        frames: One RGB frame ``[H, W, 3]`` uint8 per step, if recorded.

    """

    caught: int = 0
    balls: int = 0
    steps: int = 0
    frames: list[np.ndarray] = field(default_factory=list)

    @property
    def score(self) -> str:
        """``"Score: caught/balls"``."""
        return f"Score: {self.caught}/{self.balls}"


def play_games(
    loaded: LoadedPolicy,
    window: CatchWindow,
    games: int,
    seed: int = 0,
    record: bool = False,
) -> GamesPlayed:
    """Play ``games`` seeded games (game ``g`` seeded ``seed + g``) in ``window``.

    Args:
        loaded: The policy and its game.
        window: Where each step is drawn (a real window, or a headless one).
        games: Games to play.
        seed: Seed of the first game.
        record: Keep a copy of the window after each step.

    Returns:
        The score and, with ``record``, the frames. Closing the window (or ESC)
        ends early with what was played.

    """
    from catchrl.envs import BatchState, CatchEnv
    from catchrl.envs.window import WindowClosed

    env = CatchEnv(**loaded.env_kwargs)
    played = GamesPlayed()
    states = BatchState.zeros(1)
    try:
        for game in range(games):
            obs, info = env.reset(seed=seed + game)
            terminated = False
            while not terminated:
                states.set(0, env.state)
                action = int(loaded.policy(obs[None], states)[0])
                q = None if loaded.q_values is None else loaded.q_values(obs[None])[0]
                obs, _, terminated, _, info = env.step(action)
                played.steps += 1
                caught, balls = played.caught + info["caught"], played.balls + info["caught"]
                status = f"Score: {caught}/{balls + info['missed']}, Game: {game + 1}"
                window.draw(env.state, status, q, action)
                window.poll()
                if record:
                    played.frames.append(_pixels(window))
            played.caught += info["caught"]
            played.balls += info["caught"] + info["missed"]
        window.end_screen(f"{games} game{'s' if games > 1 else ''} played", played.score)
        if record:
            played.frames += [_pixels(window)] * END_FRAMES
        else:
            window.linger(END_SECONDS)
    except WindowClosed:
        pass
    finally:
        env.close()
    return played


def _pixels(window: CatchWindow) -> np.ndarray:
    """What the window shows now: RGB ``[H, W, 3]`` uint8, band included."""
    return window.pg.surfarray.array3d(window.surface).swapaxes(0, 1)


@contextlib.contextmanager
def headless_window(loaded: LoadedPolicy, title: str = "catchrl") -> Iterator[CatchWindow]:
    """A window for ``loaded``'s game drawn off screen (SDL's dummy driver), closed on exit.

    ``SDL_VIDEODRIVER`` is set while the window opens and restored afterwards.
    """
    from catchrl.envs import CatchEnv
    from catchrl.envs.window import CatchWindow

    old = os.environ.get("SDL_VIDEODRIVER")
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    window = None
    try:
        env = CatchEnv(**loaded.env_kwargs)
        window = CatchWindow(env.params, fps=0, scale=env._screen_scale(), title=title)
        env.close()
        yield window
    finally:
        if window is not None:
            window.close()
        if old is None:
            os.environ.pop("SDL_VIDEODRIVER", None)
        else:
            os.environ["SDL_VIDEODRIVER"] = old


def check_video_path(path: Path, option: str = "--video") -> None:
    """Refuse a video path that cannot be written, before any game is played.

    Raises:
        VideoError: The suffix is not .gif/.mp4, the folder does not exist, or the
            package that writes this format is not installed.

    """
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise VideoError(f"{option} {path}: the file must end in .gif or .mp4")
    if not path.parent.is_dir():
        raise VideoError(f"{option} {path}: folder {str(path.parent)!r} does not exist")
    _check_writer(suffix)


def _check_writer(suffix: str) -> None:
    missing = "imageio" if _absent("imageio") else None
    if suffix == ".mp4" and missing is None and _absent("imageio_ffmpeg"):
        missing = "imageio-ffmpeg"
    if missing:
        raise VideoError(
            f"writing {suffix} video needs {missing}, which is not installed: "
            "pip install 'catchrl[plot]'"
        )


def _absent(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def write_video(path: str | os.PathLike[str], frames: list[np.ndarray], fps: int = 30) -> None:
    """Write RGB frames ``[H, W, 3]`` uint8 as a GIF or an MP4 (by the suffix), one frame each.

    A GIF loops; its frame time is rounded to GIF's 10 ms. An MP4 is H.264 in
    yuv420p (plays everywhere), its frames padded with black to even sizes.

    Raises:
        VideoError: No frames, an unknown suffix, or the writer is not installed.

    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise VideoError(f"{path}: a video file must end in .gif or .mp4")
    if not frames:
        raise VideoError(f"{path}: no frames to write")
    _check_writer(suffix)
    if suffix == ".gif":
        path.write_bytes(encode_gif(frames, fps))
        return
    import imageio.v3 as iio

    video = np.stack(frames)  # [T, H, W, 3]
    h, w = video.shape[1:3]
    video = np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    iio.imwrite(
        path,
        video,
        plugin="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="error",
    )


def encode_gif(frames: list[np.ndarray], fps: int = 30) -> bytes:
    """RGB frames ``[H, W, 3]`` uint8 as the bytes of a looping GIF, one frame each.

    Raises:
        VideoError: No frames, or imageio is not installed.

    """
    if not frames:
        raise VideoError("no frames to write")
    _check_writer(".gif")
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
