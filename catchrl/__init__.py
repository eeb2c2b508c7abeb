"""catchrl: the Catch game, a Keras DQN, SB3/RLlib baselines, supervised modules (API: lazy)."""

from __future__ import annotations

import warnings
from typing import Any

from catchrl.envs import ENV_IDS  # importing the game registers its Gymnasium ids

# pygame 2.6 warns that pkg_resources (installed for tensorboard) is deprecated: not a player's.
warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning, "pygame.pkgdata")

__version__ = "0.1.0"

_API = ("Agent", "AgentLoadError", "evaluate", "load_agent", "make_config", "record", "show")
_API += ("train", "watch")
__all__ = ["ENV_IDS", "__version__", *_API]


def __getattr__(name: str) -> Any:
    """``catchrl.train`` and the rest of ``catchrl.api``, imported on first use."""
    if name in _API:
        from catchrl import api
        from catchrl.monitor import configure_frameworks

        configure_frameworks()  # TensorFlow's logs quiet, as in the CLI (train(verbose=True))
        return getattr(api, name)
    raise AttributeError(f"module 'catchrl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
