"""How the ML frameworks behave in a catchrl process, set up by the CLI and the API.

TensorFlow's C++ logs (``TF_CPP_MIN_LOG_LEVEL``) and its absl/Python warnings are
off unless ``verbose`` (errors still show; a value set in the environment wins).
TensorBoard uses its pure-Python stub when TensorFlow is not loaded, so SB3 (through
``torch.utils.tensorboard``) and the event writer do not import TensorFlow.
"""

from __future__ import annotations

import logging
import os
import sys
import types

TF_LOG_LEVEL_QUIET = "2"
"""``TF_CPP_MIN_LOG_LEVEL`` by default: 0 all, 1 no INFO, 2 no WARNING (errors shown), 3 none."""

_NOTF = "tensorboard.compat.notf"  # TensorBoard's own switch: its presence selects the stub


def configure_frameworks(verbose: bool = False) -> None:
    """Quiet TensorFlow's logs (unless ``verbose``); call before TensorFlow is imported."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL_QUIET)
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    tensorboard_without_tensorflow()


def tensorboard_without_tensorflow() -> None:
    """Have TensorBoard use its pure-Python stub, unless TensorFlow is loaded already."""
    if "tensorflow" not in sys.modules and _NOTF not in sys.modules:
        sys.modules[_NOTF] = types.ModuleType(_NOTF, "catchrl: TensorBoard without TensorFlow")
