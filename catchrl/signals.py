"""Stop signals of a run: SIGINT, SIGTERM, SIGHUP ask it to stop; a second one ends it now."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

__all__ = ["STOP_SIGNALS", "RunInterrupted", "exit_now", "handled", "signals_blocked"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunInterrupted(BaseException):
    """A second stop signal arrived: the run ends now, on its last checkpoint."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def handled(on_signal: Callable[[int, Any], None]) -> Iterator[None]:
    """Route the stop signals to ``on_signal`` for a block (not on the main thread: nothing).

    A signal ignored when the block starts stays ignored (``nohup`` ignores SIGHUP).
    """
    try:
        routed = [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
        old = {s: signal.signal(s, on_signal) for s in routed}
    except ValueError:  # not the main thread: the caller handles signals
        yield
        return
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold stop signals back while a checkpoint or model is written (delivered after)."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def exit_now(line: str, code: int) -> NoReturn:
    """Print ``line`` to stderr and end the process with ``code``, running nothing else."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, (line + "\n").encode())
    os._exit(code)
