"""The pygame window: the game drawn at full size with a score line.

pygame is imported here only, and only when a window is opened, so
``import catchrl.envs`` never touches a display.

Keys are read from the window's own events (KEYDOWN / KEYUP), not from
``pygame.key.get_pressed()``: a key held down moves the paddle on every frame,
a tap shorter than one frame still moves it once, and events posted with
``pygame.event.post`` (tests, demos) act exactly like a keyboard.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from gymnasium import logger

from catchrl.envs.core import ACTION_LEFT, ACTION_RIGHT, ACTION_STAY, CatchParams, CatchState

__all__ = ["HUD_HEIGHT", "CatchWindow", "WindowClosed", "import_pygame"]

HUD_HEIGHT = 28
"""Height in px of the score line under the playing field."""

_WHITE = (255, 255, 255)
_YELLOW = (255, 210, 80)
_HEADLESS_DRIVERS = ("dummy", "offscreen")


class WindowClosed(Exception):
    """The person closed the window (or pressed ESC)."""


def import_pygame() -> Any:
    """Import pygame, or say how to install it."""
    try:
        import pygame
    except ImportError as e:  # pragma: no cover - pygame is a core dependency
        raise ImportError("the Catch window needs pygame: pip install pygame") from e
    return pygame


def _has_display() -> bool:
    """Whether SDL has somewhere to open a window: not Linux, a display, or a driver chosen."""
    if not sys.platform.startswith("linux") or os.environ.get("SDL_VIDEODRIVER"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


_NO_DISPLAY = (
    "no display for the Catch window: run under a desktop or Xvfb "
    "(DISPLAY), or set SDL_VIDEODRIVER=dummy to run headless"
)


class CatchWindow:
    """A window that shows game states, opened on construction.

    Args:
        params: The game's geometry.
        fps: Frames per second the window waits for between draws (book: 30).
            ``0`` draws as fast as possible.
        scale: Screen pixels per world pixel (grid games use large cells).
        title: Window caption.
        headless: What to do on Linux without a display (no ``DISPLAY``,
            ``WAYLAND_DISPLAY`` or ``SDL_VIDEODRIVER``): ``"refuse"`` (default;
            ``catchrl play``) raises, ``"dummy"`` (``render_mode="human"``, as
            Gymnasium's own envs, whose SDL falls back to an off-screen driver)
            draws to SDL's dummy driver and warns that nothing is shown.

    Raises:
        RuntimeError: There is no display to open a window on (``headless="refuse"``).

    """

    def __init__(
        self,
        params: CatchParams,
        fps: int = 30,
        scale: int = 1,
        title: str = "catchrl — Catch",
        headless: str = "refuse",
    ) -> None:
        if headless not in ("refuse", "dummy"):
            raise ValueError(f"CatchWindow: headless must be 'refuse' or 'dummy', got {headless!r}")
        dummy = not _has_display()
        if dummy and headless == "refuse":
            raise RuntimeError(_NO_DISPLAY)
        # A software framebuffer, not SDL's OpenGL-accelerated one: the window is one
        # 400 x 400 blit a frame, and accelerating it loads the system's GL driver.
        # Mesa's llvmpipe (Xvfb, VMs, remote desktops) then binds LLVM symbols to the
        # copy TensorFlow loaded into the process and crashes (exit 139). Users may
        # still set the hint themselves.
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
        pg = self.pg = import_pygame()
        if dummy:
            logger.warn(f"{_NO_DISPLAY}; drawing to SDL's dummy driver, nothing is shown")
        self._dummy, self.title = dummy, title
        self.params, self.fps, self.scale = params, fps, scale
        self.size = (params.width * scale, params.height * scale + HUD_HEIGHT)
        self._open()
        pg.font.init()
        self.font = pg.font.Font(None, 24)
        self.big_font = pg.font.Font(None, 44)
        self.clock = pg.time.Clock()
        self.closed = False
        self.quit_reason: str | None = None
        """Why the person asked to quit (``"ESC pressed"``, ``"window closed"``), or None."""
        self._arrows = (pg.K_LEFT, pg.K_RIGHT)
        self._held: set[int] = set()  # arrow keys down now
        self._tapped: set[int] = set()  # arrow keys that went down since held_action()
        self._pressed: list[int] = []  # keys that went down since poll()

    def _open(self) -> None:
        """Start the display and set this window's mode (again, if another window took it)."""
        pg = self.pg
        if self._dummy:  # for this window only: SDL reads the driver when the display starts
            os.environ["SDL_VIDEODRIVER"] = "dummy"
            try:
                pg.display.init()
            finally:
                del os.environ["SDL_VIDEODRIVER"]
        else:
            pg.display.init()
        self.surface = pg.display.set_mode(self.size)
        pg.display.set_caption(self.title)

    @property
    def visible(self) -> bool:
        """Whether a person can see the window (False under SDL's dummy/offscreen drivers)."""
        return not self.closed and self.pg.display.get_driver() not in _HEADLESS_DRIVERS

    # -- input -------------------------------------------------------------------

    def _pump(self) -> None:
        """Read all pending events into the held/tapped/pressed keys and the quit request."""
        pg = self.pg
        for event in pg.event.get():
            if event.type == pg.QUIT:
                self.quit_reason = self.quit_reason or "window closed"
            elif event.type == pg.KEYDOWN:
                if event.key == pg.K_ESCAPE:
                    self.quit_reason = self.quit_reason or "ESC pressed"
                    continue
                self._pressed.append(event.key)
                if event.key in self._arrows:
                    self._held.add(event.key)
                    self._tapped.add(event.key)
            elif event.type == pg.KEYUP:
                self._held.discard(event.key)
            elif event.type == pg.WINDOWFOCUSLOST:
                self._held.clear()  # a key released in another window never sends KEYUP here

    def poll(self) -> list[int]:
        """Pump events; return keys pressed since the last call.

        Returns:
            pygame key codes, in the order they went down (ESC is never among them).

        Raises:
            WindowClosed: The window was closed or ESC pressed (now or earlier).

        """
        if not self.closed:
            self._pump()
        if self.closed or self.quit_reason:
            raise WindowClosed(self.quit_reason or "window closed")
        keys, self._pressed = self._pressed, []
        return keys

    def held_action(self) -> int:
        """Return the action the arrow keys ask for on this frame: 0 left, 1 stay, 2 right.

        A key held down asks on every frame; a key tapped since the last call
        asks once even if it is already up. Both arrows together mean stay.
        Reads the events :meth:`poll` (or :meth:`draw`) pumped.
        """
        keys = self._held | self._tapped
        self._tapped = set()
        left, right = self.pg.K_LEFT in keys, self.pg.K_RIGHT in keys
        if left and not right:
            return ACTION_LEFT
        if right and not left:
            return ACTION_RIGHT
        return ACTION_STAY

    def poll_quietly(self) -> None:
        """Pump events so the OS sees the window alive; on a quit request, close the window.

        The reason stays in :attr:`quit_reason`; a later :meth:`poll` raises it.
        """
        if self.closed:
            return
        self._pump()
        if self.quit_reason:
            self.close()

    def linger(self, seconds: float | None = None) -> None:
        """Keep the window up until Enter, Space or ESC, a close, or ``seconds`` (None: no limit).

        Returns at once if the window is closed or nobody can see it (see :attr:`visible`).
        """
        if not self.visible:
            return
        pg = self.pg
        dismiss = (pg.K_RETURN, pg.K_KP_ENTER, pg.K_SPACE)
        end = None if seconds is None else time.monotonic() + seconds
        while end is None or time.monotonic() < end:
            try:
                if any(key in dismiss for key in self.poll()):
                    return
            except WindowClosed:
                return
            pg.display.flip()
            self.clock.tick(30)

    # -- output ------------------------------------------------------------------

    def draw(self, state: CatchState, lines: Sequence[str] = (), banner: str | None = None) -> None:
        """Draw one state, the score line and any extra text, then wait for the clock.

        Args:
            state: The game state to show.
            lines: Text lines shown top left, one under the other.
            banner: A large line shown in the middle (e.g. the final score).

        """
        if not self.closed and not (
            self.pg.display.get_init() and self.pg.display.get_surface() is self.surface
        ):  # pygame has one display: another window of this process closed or replaced it
            self._open()
        self.poll_quietly()
        if self.closed:
            return
        pg, p, k = self.pg, self.params, self.scale
        self.surface.fill((0, 0, 0))
        pg.draw.rect(
            self.surface,
            _WHITE,
            pg.Rect(state.ball_x * k, state.ball_y * k, p.ball_size * k, p.ball_size * k),
        )
        pg.draw.rect(
            self.surface,
            _WHITE,
            pg.Rect(state.paddle_x * k, p.paddle_y * k, p.paddle_width * k, p.paddle_height * k),
        )
        hud_y = p.height * k
        pg.draw.line(self.surface, (90, 90, 90), (0, hud_y), (self.size[0], hud_y))
        ball_no = min(state.balls_played + 1, p.balls_per_game)
        text = f"Score: {state.caught}/{p.balls_per_game}, Ball: {ball_no}"
        self.surface.blit(self.font.render(text, True, _WHITE), (6, hud_y + 6))
        for i, line in enumerate(lines):
            self.surface.blit(self.font.render(line, True, _YELLOW), (6, 6 + 20 * i))
        if banner:
            image = self.big_font.render(banner, True, _YELLOW)
            self.surface.blit(image, image.get_rect(center=(self.size[0] // 2, hud_y // 2)))
        pg.display.flip()
        if self.fps:
            self.clock.tick(self.fps)

    def screenshot(self, path: str | os.PathLike[str]) -> None:
        """Save what the window shows now as an image file (PNG, BMP, JPEG, TGA by suffix).

        Raises:
            RuntimeError: The window is already closed.

        """
        if self.closed:
            raise RuntimeError("cannot take a screenshot: the Catch window is closed")
        self.pg.image.save(self.surface, os.fspath(path))

    def close(self) -> None:
        """Close the window; safe to call more than once."""
        if not self.closed and self.pg.display.get_init():
            self.pg.display.quit()
        self.closed = True
