"""catchrl: the Catch game, a Keras DQN, SB3 baselines and supervised modules.

The game lives in :mod:`catchrl.envs` (light: numpy, gymnasium, pygame), the
agents in :mod:`catchrl.agents`, supervised models in
:mod:`catchrl.supervised`, and the ``catchrl`` command in :mod:`catchrl.cli`.

``import catchrl`` registers the game's Gymnasium ids (:data:`ENV_IDS`), so
``gymnasium.make("catchrl/Catch-v0")`` (or ``gymnasium.make("catchrl:catchrl/Catch-v0")``
with no import) works; it imports gymnasium's registry only, the game itself
on the first ``make``, and never TensorFlow, torch or Keras.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

ENV_IDS = {
    "pixels": "catchrl/Catch-v0",
    "state": "catchrl/CatchState-v0",
    "grid": "catchrl/CatchGrid-v0",
}
"""The registered Gymnasium id of each observation type (``vector_entry_point`` included)."""

for _obs_type, _id in ENV_IDS.items():
    if _id not in registry:
        register(
            id=_id,
            entry_point="catchrl.envs.catch_env:CatchEnv",
            vector_entry_point="catchrl.envs.vector:CatchVectorEnv",
            kwargs={"obs_type": _obs_type},
        )
