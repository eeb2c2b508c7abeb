"""Training output: TensorBoard scalars and a progress display.

TensorBoard events are written with TensorBoard's own event writer, so SB3
(torch) runs and Keras runs log the same way; it runs on TensorBoard's
pure-Python stub, so an SB3 run never imports TensorFlow for it
(:func:`catchrl.frameworks.tensorboard_without_tensorflow`). On a terminal a tqdm bar shows
games, recent win rate and steps/s; otherwise plain log lines are printed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Progress", "ScalarWriter"]


class ScalarWriter:
    """Write namespaced scalars (``rollout/win_rate``, ``train/loss``...) as TensorBoard events.

    Falls back to doing nothing when the ``tensorboard`` package is missing.
    """

    def __init__(self, logdir: str | Path) -> None:
        from catchrl.frameworks import tensorboard_without_tensorflow

        tensorboard_without_tensorflow()
        try:
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:  # pragma: no cover - tensorboard comes with the keras extra
            self._writer = None
            return
        self._event, self._summary = Event, Summary
        self._writer = EventFileWriter(str(logdir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Record several scalars at one step (env steps)."""
        if self._writer is None:
            return
        summary = self._summary(
            value=[self._summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()]
        )
        self._writer.add_event(self._event(wall_time=time.time(), step=int(step), summary=summary))

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Progress:
    """A tqdm bar on a terminal, or one plain line every ``every_s`` seconds elsewhere.

    Args:
        total: Total units (env steps or games) for the bar.
        unit: Name of the unit.
        enabled: ``True`` bar, ``False`` plain lines, ``None`` bar only on a TTY.
        every_s: Seconds between plain lines.
        stream: Where to write.

    """

    def __init__(
        self,
        total: int,
        unit: str = "step",
        enabled: bool | None = None,
        every_s: float = 10.0,
        stream: TextIO | None = None,
        initial: int = 0,
    ) -> None:
        self.stream = stream or sys.stderr
        use_bar = self.stream.isatty() if enabled is None else enabled
        self._bar: Any = None
        if use_bar:
            try:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=total,
                    unit=unit,
                    initial=initial,
                    file=self.stream,
                    dynamic_ncols=True,
                    smoothing=0.1,
                )
            except ImportError:  # pragma: no cover
                self._bar = None
        self.total, self.unit, self.every_s = total, unit, every_s
        self._last = time.monotonic()
        self._n = initial

    def update(self, n: int, **fields: Any) -> None:
        """Advance to ``n`` units done and show ``fields`` (win rate, steps/s...)."""
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        if self.total and n > self.total:  # runs stop at a game (or vector step) boundary
            self._set_total(n)
        if self._bar is not None:
            self._bar.update(n - self._n)
            self._bar.set_postfix_str(text, refresh=False)
        elif time.monotonic() - self._last >= self.every_s:
            done = f"{n}/{self.total}" if self.total else f"{n}"
            self.stream.write(f"{done} {self.unit}s {text}\n")
            self.stream.flush()
            self._last = time.monotonic()
        self._n = n

    def finish(self) -> None:
        """The run is complete: the total becomes the units actually done.

        A stop rule may end a run before its budget, a game boundary after it.
        """
        self._set_total(self._n)

    def _set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def mute(self) -> None:
        """Write nothing more (the terminal went away, e.g. after SIGHUP)."""
        import os

        if self._bar is not None:
            self._bar.disable = True
            self._bar = None
        self.stream = open(os.devnull, "w")
        self.every_s = float("inf")

    def write(self, line: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
