"""catchrl: the Catch game, a Keras DQN, SB3 baselines and supervised modules.

The game lives in :mod:`catchrl.envs` (light: numpy, gymnasium, pygame), the
agents in :mod:`catchrl.agents`, supervised models in
:mod:`catchrl.supervised`, and the ``catchrl`` command in :mod:`catchrl.cli`.

``import catchrl`` imports the game (:mod:`catchrl.envs`, which registers its
Gymnasium ids, :data:`ENV_IDS`), so ``gymnasium.make("catchrl/Catch-v0")`` (or
``gymnasium.make("catchrl:catchrl/Catch-v0")`` with no import) works; it loads
numpy and gymnasium, never TensorFlow, torch or Keras.

The Python API (:mod:`catchrl.api`) is reachable from the package itself,
loaded on first use so that ``import catchrl`` imports neither TensorFlow nor
torch::

    import catchrl

    catchrl.train("fast-state", "runs/state")  # as `catchrl train`
    agent = catchrl.load_agent("runs/state")  # a run, .keras, .zip, "oracle"
    catchrl.evaluate(agent, games=1000)  # as `catchrl eval`
    catchrl.show(agent, games=3)  # Jupyter: the games inline
"""

from __future__ import annotations

import warnings
from typing import Any

from catchrl.envs import ENV_IDS  # importing the game registers its Gymnasium ids

# pygame 2.6 warns that pkg_resources (installed for tensorboard) is deprecated: not a player's.
warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning, "pygame.pkgdata")

__version__ = "0.1.0"

_API = (
    "Agent",
    "AgentLoadError",
    "evaluate",
    "load_agent",
    "make_config",
    "record",
    "show",
    "train",
    "watch",
)
__all__ = ["ENV_IDS", "__version__", *_API]


def __getattr__(name: str) -> Any:
    """``catchrl.train`` and the rest of :mod:`catchrl.api`, imported on first use."""
    if name in _API:
        from catchrl import api

        return getattr(api, name)
    raise AttributeError(f"module 'catchrl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
