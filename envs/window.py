"""The pygame window: the field at full size and, in a band of its own below it, the HUD.

pygame is imported when a window opens. Keys come from the window's events: a held
key moves the paddle every frame, a tap once; posted events act as a keyboard.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from gymnasium import logger

from catchrl.envs.core import ACTION_LEFT, ACTION_RIGHT, ACTION_STAY, CatchParams, CatchState
from catchrl.envs.render import render_screen

HUD_HEIGHT = 64  # px of the band under the field: the score line, then the Q-value bars
MIN_WIDTH = 400  # narrower fields (the grid's 200 px) get a band this wide, the field at left
ACTION_NAMES = ("left", "stay", "right")
BIG, TEXT, SMALL = 40, 24, 18  # pygame Font sizes (about 0.7 of it in px): end, score, labels

_WHITE, _GREY, _DARK, _YELLOW = (255, 255, 255), (150, 150, 150), (60, 60, 60), (255, 210, 80)


class WindowClosed(Exception):
    """The person closed the window (or pressed ESC)."""


Q, A = Sequence[float] | None, int | None  # Q-values of left, stay, right; an action
_NO_DISPLAY = (
    "no display for the Catch window: run under a desktop or Xvfb, or SDL_VIDEODRIVER=dummy"
)


class CatchWindow:
    """A window that shows game states, opened on construction (``fps``: book 30; 0: no wait).

    Without a display it raises ``RuntimeError``, or with ``dummy`` (``render_mode="human"``,
    as Gymnasium's envs) warns and draws to SDL's dummy driver.
    """

    def __init__(
        self,
        params: CatchParams,
        fps: int = 30,
        scale: int = 1,
        title: str = "catchrl — Catch",
        dummy: bool = False,
    ) -> None:
        shown = any(map(os.environ.get, ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")))
        no_display = sys.platform.startswith("linux") and not shown  # SDL has nowhere to open it
        if no_display and not dummy:
            raise RuntimeError(_NO_DISPLAY)
        # A software framebuffer: SDL's GL one loads Mesa's llvmpipe (Xvfb, VMs), which binds
        # LLVM symbols to TensorFlow's copy in the process and crashes (exit 139).
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
        import pygame as pg

        self.pg = pg
        if no_display:
            logger.warn(f"{_NO_DISPLAY}; drawing to SDL's dummy driver, nothing is shown")
        self._dummy, self.title = no_display, title
        self.params, self.fps, self.scale = params, fps, scale
        self.field = (params.width * scale, params.height * scale)
        self.size = (max(self.field[0], MIN_WIDTH), self.field[1] + HUD_HEIGHT)
        self._open()
        pg.font.init()
        self._fonts: dict[int, Any] = {}
        self.clock = pg.time.Clock()
        self.closed = False
        self.quit_reason: str | None = None  # "ESC pressed", "window closed"
        self._held: set[int] = set()  # arrow keys down now
        self._tapped: set[int] = set()  # arrow keys that went down since held_action()
        self._pressed: list[int] = []  # keys that went down since poll()

    def _open(self) -> None:
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
        return not self.closed and self.pg.display.get_driver() not in ("dummy", "offscreen")

    def _pump(self) -> None:
        pg = self.pg
        for event in pg.event.get():
            esc = event.type == pg.KEYDOWN and event.key == pg.K_ESCAPE
            if event.type == pg.QUIT or esc:
                self.quit_reason = self.quit_reason or ("ESC pressed" if esc else "window closed")
            elif event.type == pg.KEYDOWN:
                self._pressed.append(event.key)
                if event.key in (pg.K_LEFT, pg.K_RIGHT):
                    self._held.add(event.key)
                    self._tapped.add(event.key)
            elif event.type == pg.KEYUP:
                self._held.discard(event.key)
            elif event.type == pg.WINDOWFOCUSLOST:
                self._held.clear()  # a key released in another window never sends KEYUP here

    def poll(self) -> list[int]:
        """Pump events; the keys pressed since the last call; ``WindowClosed`` once closed/ESC."""
        if not self.closed:
            self._pump()
        if self.closed or self.quit_reason:
            raise WindowClosed(self.quit_reason or "window closed")
        keys, self._pressed = self._pressed, []
        return keys

    def held_action(self) -> int:
        """The arrows' action now (0, 1, 2): a held key every frame, a tap once; both: stay."""
        keys, self._tapped = self._held | self._tapped, set()
        left, right = self.pg.K_LEFT in keys, self.pg.K_RIGHT in keys
        return ACTION_STAY if left == right else ACTION_LEFT if left else ACTION_RIGHT

    def linger(self, seconds: float | None = None) -> None:
        """Keep a visible window up until Enter, Space, ESC, a close or ``seconds`` (None: ever)."""
        if not self.visible:
            return
        pg, end = self.pg, None if seconds is None else time.monotonic() + seconds
        with contextlib.suppress(WindowClosed):
            while end is None or time.monotonic() < end:
                if {pg.K_RETURN, pg.K_KP_ENTER, pg.K_SPACE} & set(self.poll()):
                    return
                pg.display.flip()
                self.clock.tick(30)

    def draw(
        self, state: CatchState, status: str | None = None, q_values: Q = None, action: A = None
    ) -> None:
        """Draw ``state`` on the field and the band under it, then wait for the clock.

        The band: ``status`` (default: the book's ``"Score: caught/balls, Ball: n"``),
        then ``q_values`` (left, stay, right) as labelled bars, ``action`` marked.
        """
        if not self._ready():
            return
        p, screen = self.params, render_screen(self.params, state, self.scale)  # [H, W]: 0 or 255
        self.surface.fill((0, 0, 0))
        self.surface.blit(self.pg.surfarray.make_surface(screen.T), (0, 0))  # palette: 255 white
        if status is None:
            ball_no = min(state.balls_played + 1, p.balls_per_game)
            status = f"Score: {state.caught}/{p.balls_per_game}, Ball: {ball_no}"
        self._band(status, q_values, action)
        self._show()

    def end_screen(self, title: str, score: str) -> None:
        """The closing screen: ``title`` and ``score`` large over the cleared field, a hint."""
        if not self._ready():
            return
        self.surface.fill((0, 0, 0))
        cx, cy = self.field[0] // 2, self.field[1] // 2
        lines = [(title, BIG, _YELLOW, cy - 40), (score, BIG, _WHITE, cy)]
        hint = ("Enter, Space or ESC to close", TEXT, _GREY, cy + 40)
        for text, size, color, y in [*lines, hint]:
            image = self.text(text, size, color)
            self.surface.blit(image, image.get_rect(center=(cx, y)))
        self._band(score, None, None)
        self._show()

    def text(self, text: str, size: int, color: tuple[int, int, int]) -> Any:
        """``text`` in the default font, drawn at twice ``size`` and halved (not "Ga me over!")."""
        if size not in self._fonts:
            self._fonts[size] = self.pg.font.Font(None, 2 * size)
        image = self._fonts[size].render(text, True, color)
        w, h = image.get_size()
        return self.pg.transform.smoothscale(image, (w // 2, h // 2))

    def _ready(self) -> bool:
        display = self.pg.display  # one per process: another window may have closed or taken it
        if not self.closed:
            if not (display.get_init() and display.get_surface() is self.surface):
                self._open()
            self._pump()  # the OS sees the window alive; a quit closes it
            if self.quit_reason:
                self.close()
        return not self.closed

    def _band(self, status: str, q_values: Q, action: A) -> None:
        pg, top, width = self.pg, self.field[1], self.size[0]
        pg.draw.line(self.surface, _DARK, (0, top), (width, top))
        self.surface.blit(self.text(status, TEXT, _WHITE), (8, top + 6))
        slot, q = (width - 8) // 3, [0.0] * 3 if q_values is None else [float(v) for v in q_values]
        low, span = min(q), (max(q) - min(q)) or 1.0
        shown = ACTION_NAMES if q_values is not None or action is not None else ()
        for i, name in enumerate(shown):
            x, color = 8 + i * slot, _YELLOW if i == action else _GREY
            label = ("> " if i == action else "") + name
            label += "" if q_values is None else f" {q[i]:+.2f}"
            self.surface.blit(self.text(label, SMALL, color), (x, top + 46))
            if q_values is not None:  # the lowest Q a sliver, the highest the full slot
                length = max(3, int((slot - 12) * (0.1 + 0.9 * (q[i] - low) / span)))
                pg.draw.rect(self.surface, color, pg.Rect(x, top + 28, length, 14))

    def _show(self) -> None:
        self.pg.display.flip()
        if self.fps:
            self.clock.tick(self.fps)

    def screenshot(self, path: str | os.PathLike[str]) -> None:
        """Save what the window shows as an image (PNG, BMP, JPEG by suffix); not once closed."""
        if self.closed:
            raise RuntimeError("cannot take a screenshot: the Catch window is closed")
        self.pg.image.save(self.surface, os.fspath(path))

    def close(self) -> None:
        """Close the window; safe to call more than once."""
        if not self.closed and self.pg.display.get_init():
            self.pg.display.quit()
        self.closed = True
