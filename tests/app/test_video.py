"""Video: ``catchrl watch --video`` writes MP4 and GIF with one frame per step, drawn where
the game's state says; Gymnasium's ``RecordVideo`` writes a file with the ``plot`` extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catchrl.cli import main

iio = pytest.importorskip("imageio.v3")
pytest.importorskip("imageio_ffmpeg")

GAMES, BALLS = 2, 1


def _expected_states() -> list:
    """The state after every step of the oracle's games 0 and 1 (seeds 0, 1), replayed here."""
    from catchrl.agents.scripted import OraclePolicy
    from catchrl.envs import BatchState, CatchEnv

    env = CatchEnv(obs_type="state", balls_per_game=BALLS)
    oracle, after = OraclePolicy(env.params), []
    for game in range(GAMES):
        obs, _ = env.reset(seed=game)
        terminated = False
        while not terminated:
            action = oracle(obs[None], BatchState.of([env.state]))[0]
            obs, _, terminated, _, _ = env.step(int(action))
            after.append(env.state)
    return after


def _read(path: Path) -> np.ndarray:
    extra = {"plugin": "FFMPEG"} if path.suffix == ".mp4" else {}
    return iio.imread(path, index=None, **extra)  # [T, H, W, 3]


@pytest.mark.parametrize(("option", "name"), [("--video", "games.mp4"), ("--gif", "games.gif")])
def test_watch_writes_one_frame_per_step_as_the_state_says(
    tmp_path: Path, capsys: pytest.CaptureFixture, option: str, name: str
) -> None:
    from catchrl.envs import CatchEnv
    from catchrl.envs.window import HUD_HEIGHT
    from catchrl.video import END_FRAMES

    out = tmp_path / name
    argv = ["watch", "oracle", option, str(out), "--games", str(GAMES), "--balls", str(BALLS)]
    assert main(argv) == 0
    assert f"oracle: caught {GAMES * BALLS}/{GAMES * BALLS}" in capsys.readouterr().out
    frames = _read(out)
    states = _expected_states()
    p = CatchEnv(obs_type="state").params
    assert len(states) == GAMES * BALLS * 33
    still = END_FRAMES if out.suffix == ".mp4" else 1  # a GIF holds a still screen as one frame
    assert frames.shape == (len(states) + still, p.height + HUD_HEIGHT, p.width, 3)
    end, frames = frames[len(states) :], frames[: len(states)]  # the closing screen, the steps
    assert (np.abs(end.astype(int) - end[:1]).mean(axis=(1, 2, 3)) < 2).all()  # one still screen
    assert np.abs(end[0, : p.height].astype(int) - frames[-1, : p.height]).max() > 100
    grey = frames.astype(np.float32).mean(axis=3)  # [T, H, W]
    half = p.ball_size // 2
    for t, s in enumerate(states):
        ball = grey[t, int(s.ball_y) + half, int(s.ball_x) + half]
        paddle = grey[t, p.paddle_y + p.paddle_height // 2, int(s.paddle_x) + p.paddle_width // 2]
        assert ball > 200 and paddle > 200, (t, ball, paddle)
    moved = [np.abs(grey[t + 1] - grey[t]).max() for t in range(len(states) - 1)]
    assert min(moved) > 100  # every frame is a new step (the ball falls 20 px a step)
    if out.suffix == ".gif":  # lossless: the field is black but for ball and paddle, no HUD
        for t, s in enumerate(states):
            mask = np.zeros((p.height, p.width), bool)
            bx, by = int(s.ball_x), int(s.ball_y)
            mask[by : by + p.ball_size, bx : bx + p.ball_size] = True
            px, py = int(s.paddle_x), p.paddle_y
            mask[py : py + p.paddle_height, px : px + p.paddle_width] = True
            assert (grey[t, : p.height][~mask] == 0).all() and grey[t, p.height :].any()


def test_watch_refuses_a_bad_video_path_before_playing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for target, message in (
        (tmp_path / "games.avi", "must end in .gif or .mp4"),
        (tmp_path / "missing" / "games.mp4", "does not exist"),
    ):
        assert main(["watch", "oracle", "--video", str(target)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not target.exists()


def test_gymnasium_record_video_writes_a_file(tmp_path: Path) -> None:
    pytest.importorskip("moviepy")
    import gymnasium as gym
    from gymnasium.wrappers import RecordVideo

    import catchrl.envs  # noqa: F401  (registers the ids)

    env = RecordVideo(
        gym.make("catchrl/Catch-v0", render_mode="rgb_array"),
        str(tmp_path / "videos"),
        episode_trigger=lambda episode: True,
        disable_logger=True,
    )
    env.reset(seed=0)
    steps, terminated = 0, False
    while not terminated:
        _, _, terminated, _, _ = env.step(1)
        steps += 1
    env.close()
    (video,) = (tmp_path / "videos").glob("*.mp4")
    frames = _read(video)
    assert frames.shape == (steps + 1, 400, 400, 3)  # Gymnasium records the reset frame too
    assert frames[0].max() > 200 and (frames[0] != frames[-1]).any()
