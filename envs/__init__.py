"""The Catch game: pure batched core, Gymnasium env, native vector env, frames, window.

Importing this package registers the Gymnasium ids (:data:`ENV_IDS`), each
with a ``vector_entry_point``, so ``gymnasium.make_vec`` builds the native batch:

- ``catchrl/Catch-v0``: pixels, the book's 4 stacked 80 x 80 grey frames;
- ``catchrl/CatchState-v0``: the state vector;
- ``catchrl/CatchGrid-v0``: bsuite's 10 x 5 board and dynamics.

Any :class:`CatchParams` field can be passed to ``gymnasium.make``. An env
that could not fit in memory is refused before it allocates:
:func:`estimate_env_bytes` says what one needs, :func:`available_memory_bytes`
what the machine has free. Only numpy and gymnasium are imported here;
pygame when a window opens.
"""

from gymnasium.envs.registration import register, registry

from catchrl.envs.catch_env import CatchEnv, check_action
from catchrl.envs.core import (
    ACTION_LEFT,
    ACTION_RIGHT,
    ACTION_STAY,
    BatchState,
    CatchParams,
    CatchState,
    check_reset_options,
    reset_batch,
    reset_state,
    step_batch,
    step_state,
)
from catchrl.envs.limits import MAX_FRAME_SIZE, MAX_FRAME_STACK
from catchrl.envs.observations import OBS_TYPES
from catchrl.envs.render import FrameRenderer, FrameStack, area_downscale, render_screen
from catchrl.envs.sizing import available_memory_bytes, estimate_env_bytes
from catchrl.envs.vector import CatchVectorEnv

__all__ = [
    "ACTION_LEFT",
    "ACTION_RIGHT",
    "ACTION_STAY",
    "ENV_IDS",
    "MAX_FRAME_SIZE",
    "MAX_FRAME_STACK",
    "OBS_TYPES",
    "BatchState",
    "CatchEnv",
    "CatchParams",
    "CatchState",
    "CatchVectorEnv",
    "FrameRenderer",
    "FrameStack",
    "area_downscale",
    "available_memory_bytes",
    "check_action",
    "check_reset_options",
    "env_id",
    "estimate_env_bytes",
    "render_screen",
    "reset_batch",
    "reset_state",
    "step_batch",
    "step_state",
]

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


def env_id(obs_type: str) -> str:
    """The registered Gymnasium id for an observation type."""
    if obs_type not in ENV_IDS:
        raise ValueError(f"unknown obs_type {obs_type!r}; choose one of {tuple(ENV_IDS)}")
    return ENV_IDS[obs_type]
