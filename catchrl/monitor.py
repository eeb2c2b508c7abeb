"""What a run shows: TensorBoard scalars, a progress bar or plain lines, the frameworks' logs."""

from __future__ import annotations

import errno
import logging
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

_NOTF = "tensorboard.compat.notf"  # TensorBoard's own switch: its presence selects the stub


def configure_frameworks(verbose: bool = False) -> None:
    """TensorFlow's logs off but errors (unless ``verbose``); call before TensorFlow loads."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:  # 2: no INFO, no WARNING; a value the user set wins
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    tensorboard_without_tensorflow()


def tensorboard_without_tensorflow() -> None:
    """TensorBoard's pure-Python stub (for SB3's writer), unless TensorFlow is loaded already."""
    if "tensorflow" not in sys.modules and _NOTF not in sys.modules:
        sys.modules[_NOTF] = types.ModuleType(_NOTF, "catchrl: TensorBoard without TensorFlow")


class TensorBoard:
    """Scalars into ``RUN/tb``: ``tf.summary`` under eager TensorFlow (Keras), else tensorboardX.

    Not ``tensorboard.summary.Writer``: it binds TensorBoard's lazy ``tf`` to the stub.
    """

    def __init__(self, logdir: Path) -> None:
        tf = sys.modules.get("tensorflow")
        self._tf: Any = tf if tf is not None and tf.executing_eagerly() else None
        if self._tf is not None:
            from tensorboard.plugins.scalar.metadata import create_summary_metadata

            self._scalar = create_summary_metadata("", "")
            self._writer = self._tf.summary.create_file_writer(str(logdir))
        else:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(logdir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Write ``{tag: value}`` at ``step`` (env steps)."""
        if self._tf is None:
            for tag, value in values.items():
                self._writer.add_scalar(tag, float(value), int(step))
            return
        try:  # what tf.summary.scalar writes, without its TensorBoard import
            with self._writer.as_default(step=int(step)):
                for tag, value in values.items():
                    self._tf.summary.write(tag, float(value), metadata=self._scalar)
        except self._tf.errors.ResourceExhaustedError as e:  # a full disk
            raise OSError(errno.ENOSPC, e.message) from e

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


class Progress:
    """A tqdm bar on stderr (``enabled``; None: on a terminal), else a line on stdout every 10 s."""

    def __init__(self, total: int, enabled: bool | None = None, initial: int = 0) -> None:
        from tqdm import tqdm

        self.stream, self.total, self.n = sys.stdout, total, initial
        self._last = time.monotonic()
        off = None if enabled is None else not enabled  # None: tqdm's, off unless on a terminal
        self._bar = tqdm(total=total, unit="step", initial=initial, dynamic_ncols=True, disable=off)

    def update(self, n: int, **fields: Any) -> None:
        """Advance to ``n`` steps done and show ``fields`` (games, win rate, ε, steps/s)."""
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        self._bar.update(n - self.n)
        self._bar.set_postfix_str(text, refresh=False)
        if self._bar.disable and time.monotonic() - self._last >= 10:
            self.write(f"{n}/{self.total} steps {text}")
            self._last = time.monotonic()
        self.n = n

    def finish(self, n: int) -> None:
        """The run is complete after ``n`` steps (a vector step may pass the budget)."""
        self.total = self._bar.total = n
        self._bar.update(n - self.n)
        self.n = n

    def mute(self) -> None:
        """Write nothing more (the terminal went away: SIGHUP)."""
        self._bar.disable = True
        self.stream = open(os.devnull, "w")

    def write(self, line: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar.disable:
            self.stream.write(line + "\n")
            self.stream.flush()
        else:
            self._bar.write(line, file=self.stream)

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()
