"""The Catch game: a pure batched core, the Gymnasium env and vector env, frames, window.

Importing it registers :data:`ENV_IDS`; any :class:`CatchParams` field passes ``gymnasium.make``.
"""

from gymnasium.envs.registration import register, registry

from catchrl.envs.catch_env import CatchEnv
from catchrl.envs.core import (
    MAX_FRAME_SIZE,
    MAX_FRAME_STACK,
    BatchState,
    CatchParams,
    CatchState,
    reset_batch,
    step_batch,
)
from catchrl.envs.observations import OBS_TYPES
from catchrl.envs.render import FrameRenderer, render_screen
from catchrl.envs.sizing import available_memory_bytes, check_fits, estimate_env_bytes
from catchrl.envs.vector import CatchVectorEnv

__all__ = ["ENV_IDS", "MAX_FRAME_SIZE", "MAX_FRAME_STACK", "OBS_TYPES", "BatchState", "CatchEnv"]
__all__ += ["CatchParams", "CatchState", "CatchVectorEnv", "FrameRenderer"]
__all__ += ["available_memory_bytes", "check_fits", "estimate_env_bytes", "render_screen"]
__all__ += ["reset_batch", "step_batch"]

ENV_IDS = {
    "pixels": "catchrl/Catch-v0",
    "state": "catchrl/CatchState-v0",
    "grid": "catchrl/CatchGrid-v0",
}
"""The registered Gymnasium id of each observation type (``vector_entry_point`` included)."""

_ONE, _MANY = "catchrl.envs.catch_env:CatchEnv", "catchrl.envs.vector:CatchVectorEnv"
for _obs_type, _id in ENV_IDS.items():
    if _id not in registry:
        register(_id, entry_point=_ONE, vector_entry_point=_MANY, kwargs={"obs_type": _obs_type})
