"""The pygame window on a real X server (Xvfb + Mesa), in a process that imported TensorFlow.

The dummy video driver hides what this catches: with SDL's GL-accelerated
framebuffer, Mesa's llvmpipe binds LLVM symbols to TensorFlow's copy and the
process dies with a segfault (exit 139) as the window opens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")


@pytest.fixture(scope="module")
def display():
    for number in range(91, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists():
            break
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{number}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait()


def _env(display: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER",)}
    env.update(DISPLAY=display, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("SDL_FRAMEBUFFER_ACCELERATION", None)  # what a user has: nothing set
    return env


def test_play_under_xvfb_after_tensorflow_ends_on_the_score(display, tmp_path):
    shot = tmp_path / "play.png"
    code = (
        "import tensorflow, sys\n"
        "from catchrl.cli import main\n"
        "sys.exit(main(['play', '--policy', 'oracle', '--balls', '2', '--fps', '0',"
        f" '--linger', '0', '--seed', '3', '--screenshot', {str(shot)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(display),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "Score: 2/2" in done.stdout
    import pygame
    from PIL import Image

    from catchrl.envs.window import HUD_HEIGHT

    pixels = np.asarray(Image.open(shot).convert("L"))  # the window: the field, the band
    assert pixels.shape == (400 + HUD_HEIGHT, 400)
    pygame.font.init()
    font = pygame.font.Font(None, 80)  # the end screen's, drawn at twice its size
    text = font.render("Score: 2/2", True, (255, 255, 255))
    text = pygame.transform.smoothscale(text, (text.get_width() // 2, text.get_height() // 2))
    lit = pygame.surfarray.array_alpha(text).T > 200  # the letters' solid pixels
    x, y = text.get_rect(center=(200, 200)).topleft  # centred on the field
    shown = pixels[y : y + lit.shape[0], x : x + lit.shape[1]]
    assert (shown[lit] > 128).mean() > 0.995 and (shown[~lit] < 100).mean() > 0.5  # "2/3": 0.98


def test_watch_under_xvfb_plays_a_trained_model(display, quick_run):
    done = subprocess.run(
        [sys.executable, "-m", "catchrl", "watch", str(quick_run), "--games", "1", "--fps", "0"],
        env=_env(display),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "caught" in done.stdout
