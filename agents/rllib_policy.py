"""A trained RLlib RLModule saved as one ``.npz`` file, and loaded as a greedy policy.

The file holds the inference-only weights and a JSON header (algorithm, network settings,
observation shape); loading rebuilds the module from RLlib's spec: no pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from catchrl.agents.npz import load_npz
from catchrl.agents.rllib_algos import module_spec
from catchrl.agents.rllib_env import to_module_obs

FORMAT = "catchrl-rllib-module/1"
_HEADER = "__catchrl_header__"


def save_rllib_module(path: str | Path, module: Any, algo: str, options: dict[str, Any]) -> None:
    """Write ``module``'s inference-only weights and how to rebuild it to ``path`` (``.npz``)."""
    arrays = module.get_state(inference_only=True)  # numpy arrays
    header = {
        "format": FORMAT,
        "algo": algo,
        "options": {k: options[k] for k in ("model", "double_q", "dueling") if k in options},
        "obs_shape": list(module.observation_space.shape),
        "obs_dtype": str(module.observation_space.dtype),
        "actions": int(module.action_space.n),
    }
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:  # the run directory renames it into place, synced
        np.savez(f, **arrays)


def _obs_batch(obs: np.ndarray) -> dict[str, Any]:
    import torch
    from ray.rllib.core.columns import Columns

    return {Columns.OBS: torch.from_numpy(np.ascontiguousarray(to_module_obs(obs)))}


def greedy_actions(module: Any, obs: np.ndarray) -> np.ndarray:
    """An RLModule's greedy action for each observation (PPO: the likeliest; DQN: max Q)."""
    import torch
    from ray.rllib.core.columns import Columns

    with torch.no_grad():
        out = module.forward_inference(_obs_batch(obs))
    if Columns.ACTIONS in out:
        return np.asarray(out[Columns.ACTIONS], dtype=np.int64).reshape(len(obs))
    return out[Columns.ACTION_DIST_INPUTS].argmax(dim=-1).numpy().astype(np.int64).reshape(-1)


class RLlibModule:
    """An RLModule rebuilt from a saved ``.npz``: greedy actions and (DQN) Q-values.

    ValueError: not such a file, or weights that do not fit; RLlibNotInstalled without RLlib.
    """

    def __init__(self, path: str | Path) -> None:
        arrays = load_npz(path)  # ValueError: not a readable .npz
        try:
            header = json.loads(bytes(arrays.pop(_HEADER)).decode())
        except (KeyError, ValueError) as e:  # no header, or not JSON
            raise ValueError(f"{path}: not a catchrl RLlib model ({e!r})") from e
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown model format {header.get('format')!r}")
        self.algo: str = header["algo"]
        self.obs_shape = tuple(header["obs_shape"])
        try:
            obs_space = gym.spaces.Box(-np.inf, np.inf, self.obs_shape, header["obs_dtype"])
            actions = gym.spaces.Discrete(header["actions"])
            self.module = module_spec(self.algo, header["options"], obs_space, actions).build()
            self.module.set_state(arrays)
            self.module.eval()
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise ValueError(
                f"{path}: the weights do not fit {self.algo}'s module "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            ) from e

    def actions(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The greedy action of each observation (the evaluation policy)."""
        return greedy_actions(self.module, obs)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """DQN's Q-values ``[N, A]`` (float32)."""
        import torch
        from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS

        with torch.no_grad():
            q = self.module.compute_q_values(_obs_batch(obs))[QF_PREDS]
        return q.numpy().astype(np.float32)
