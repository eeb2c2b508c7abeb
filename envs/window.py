"""The pygame window: the game drawn at full size with a score line.

pygame is imported here only, and only when a window is opened, so
``import catchrl.envs`` never touches a display.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from catchrl.envs.core import CatchParams, CatchState

__all__ = ["CatchWindow", "WindowClosed"]

HUD_HEIGHT = 28


class WindowClosed(Exception):
    """The person closed the window (or pressed ESC)."""


def _import_pygame():  # noqa: ANN202 - the module
    try:
        import pygame
    except ImportError as e:  # pragma: no cover - pygame is a core dependency
        raise ImportError("the Catch window needs pygame: pip install pygame") from e
    return pygame


def _check_display() -> None:
    """Refuse clearly (SDL would crash) when Linux has no display and no SDL driver is chosen."""
    if not sys.platform.startswith("linux") or os.environ.get("SDL_VIDEODRIVER"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RuntimeError("no display for the Catch window: run under a desktop or Xvfb "
                           "(DISPLAY), or set SDL_VIDEODRIVER=dummy to run headless")


class CatchWindow:
    """A window that shows game states, opened on construction.

    Args:
        params: The game's geometry.
        fps: Frames per second the window waits for between draws (book: 30).
            ``0`` draws as fast as possible.
        scale: Screen pixels per world pixel (grid games use large cells).
        title: Window caption.
    """

    def __init__(self, params: CatchParams, fps: int = 30, scale: int = 1,
                 title: str = "catchrl — Catch") -> None:
        _check_display()
        pg = self.pg = _import_pygame()
        pg.display.init()
        pg.font.init()
        self.params, self.fps, self.scale = params, fps, scale
        self.size = (params.width * scale, params.height * scale + HUD_HEIGHT)
        self.surface = pg.display.set_mode(self.size)
        pg.display.set_caption(title)
        self.font = pg.font.Font(None, 24)
        self.clock = pg.time.Clock()
        self.closed = False

    def poll(self) -> list[int]:
        """Pump events; return keys pressed since the last call. Raises WindowClosed on quit/ESC."""
        pg = self.pg
        keys = []
        for event in pg.event.get():
            if event.type == pg.QUIT:
                raise WindowClosed("window closed")
            if event.type == pg.KEYDOWN:
                if event.key == pg.K_ESCAPE:
                    raise WindowClosed("ESC pressed")
                keys.append(event.key)
        return keys

    def held_action(self) -> int:
        """The action the arrow keys held down now ask for: 0 left, 1 stay, 2 right."""
        pressed = self.pg.key.get_pressed()
        left, right = pressed[self.pg.K_LEFT], pressed[self.pg.K_RIGHT]
        return 0 if left and not right else 2 if right and not left else 1

    def draw(self, state: CatchState, lines: Sequence[str] = ()) -> None:
        """Draw one state, the score line and any extra text lines, then wait for the clock."""
        if self.closed:
            return
        pg, p, k = self.pg, self.params, self.scale
        self.poll_quietly()
        self.surface.fill((0, 0, 0))
        white = (255, 255, 255)
        pg.draw.rect(self.surface, white,
                     pg.Rect(state.ball_x * k, state.ball_y * k, p.ball_size * k, p.ball_size * k))
        pg.draw.rect(self.surface, white,
                     pg.Rect(state.paddle_x * k, p.paddle_y * k,
                             p.paddle_width * k, p.paddle_height * k))
        hud_y = p.height * k
        pg.draw.line(self.surface, (90, 90, 90), (0, hud_y), (self.size[0], hud_y))
        ball_no = min(state.balls_played + 1, p.balls_per_game)
        text = f"Score: {state.caught}/{p.balls_per_game}, Ball: {ball_no}"
        self.surface.blit(self.font.render(text, True, white), (6, hud_y + 6))
        for i, line in enumerate(lines):
            self.surface.blit(self.font.render(line, True, (255, 210, 80)), (6, 6 + 20 * i))
        pg.display.flip()
        if self.fps:
            self.clock.tick(self.fps)

    def poll_quietly(self) -> None:
        """Pump events so the OS sees the window alive; remember a quit instead of raising."""
        try:
            self.poll()
        except WindowClosed:
            self.closed = True

    def screenshot(self, path: str) -> None:
        """Save what the window shows now as an image file."""
        self.pg.image.save(self.surface, path)

    def close(self) -> None:
        """Close the window; safe to call more than once."""
        if self.pg.display.get_init():
            self.pg.display.quit()
        self.closed = True
