"""How the ML frameworks behave in a catchrl process: their logs, and TensorFlow only when used.

The one place that sets this up, called by the ``catchrl`` command and by the
Python API (:mod:`catchrl.api`) before anything imports TensorFlow:

- TensorFlow's C++ logs (``TF_CPP_MIN_LOG_LEVEL``: the CPU-feature, XLA and
  oneDNN INFO/WARNING lines) and its absl / Python warnings are off unless
  ``verbose``; errors still show. A value the user set in the environment wins.
- TensorBoard resolves its optional TensorFlow dependency to its own
  pure-Python stub (``tensorboard.compat.tensorflow_stub``) when TensorFlow is
  not already loaded. Without this, importing Stable-Baselines3 (through
  ``torch.utils.tensorboard``) or opening TensorBoard's event writer imports
  all of TensorFlow — seconds of start-up and its logs in an SB3 run. The event
  files written are the same either way (the stub's ``gfile`` writes local
  files; the record format is TensorBoard's own).
"""

from __future__ import annotations

import logging
import os
import sys
import types

__all__ = ["TF_LOG_LEVEL_QUIET", "configure_frameworks", "tensorboard_without_tensorflow"]

TF_LOG_LEVEL_QUIET = "2"
"""``TF_CPP_MIN_LOG_LEVEL`` by default: 0 all, 1 no INFO, 2 no WARNING (errors shown), 3 none."""

_NOTF = "tensorboard.compat.notf"  # TensorBoard's own switch: its presence selects the stub


def configure_frameworks(verbose: bool = False) -> None:
    """Quiet TensorFlow's logs (unless ``verbose``) and keep TensorBoard off TensorFlow.

    Call it before TensorFlow is imported; afterwards the C++ log level is fixed
    for the process (the Python-side loggers are still set). Calling it again is harmless.

    Args:
        verbose: Show TensorFlow's INFO and WARNING logs (``--verbose``).

    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        level = logging.INFO
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL_QUIET)
        level = logging.ERROR
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(level)
    tensorboard_without_tensorflow()


def tensorboard_without_tensorflow() -> None:
    """Have TensorBoard use its pure-Python stub, unless TensorFlow is loaded already.

    Call it before Stable-Baselines3 (or ``torch.utils.tensorboard``) is imported
    and before an event writer opens. In a process that loads TensorFlow later
    (a Keras run), TensorBoard keeps the stub for its file access, which writes
    the same files.
    """
    if "tensorflow" not in sys.modules and _NOTF not in sys.modules:
        sys.modules[_NOTF] = types.ModuleType(_NOTF, "catchrl: TensorBoard without TensorFlow")
