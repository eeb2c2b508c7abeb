"""Quiet ML frameworks in a catchrl process, set up by the CLI and the API."""

from __future__ import annotations

import logging
import os
import sys
import types

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
