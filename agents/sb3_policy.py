"""A saved Stable-Baselines3 model as a :class:`~catchrl.agents.policy.LoadedPolicy`.

Greedy actions (``deterministic=True``) for the evaluation harness and
``catchrl watch``; DQN and QR-DQN also give their Q-values. Loading a ``.zip``
unpickles code: catchrl does it only for a file the user named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from catchrl.agents.policy import LoadedPolicy, PolicyLoadError
from catchrl.agents.sb3_algos import (
    OFF_POLICY,
    SB3ConfigError,
    SB3NotInstalled,
    detect_algo,
    load_sb3_model,
)

__all__ = ["load_sb3_policy"]


def load_sb3_policy(
    model_path: str | Path, env_kwargs: dict[str, Any], name: str, algo: str | None = None
) -> Any:
    """A saved SB3 model as a :class:`~catchrl.agents.policy.LoadedPolicy`.

    The policy is greedy (``deterministic=True``); DQN and QR-DQN also expose
    ``q_values`` (QR-DQN: the mean over quantiles) for ``catchrl watch``.

    Args:
        model_path: The ``.zip`` the user named.
        env_kwargs: The game the policy will play (obs type and variants).
        name: Display name.
        algo: The run's ``--algo``; guessed from the file's metadata when ``None``.

    Raises:
        PolicyLoadError: Missing SB3, an unreadable file, or a model
            whose observation shape does not match the game.

    """
    from catchrl.envs import CatchEnv

    model_path = Path(model_path)
    algo = algo or detect_algo(model_path)
    if algo is None:
        raise PolicyLoadError(
            f"{model_path}: not a Stable-Baselines3 model file (no readable 'data' metadata)"
        )
    try:
        model = load_sb3_model(model_path, algo)
    except (SB3NotInstalled, SB3ConfigError) as e:
        raise PolicyLoadError(str(e)) from e
    except Exception as e:  # torch/pickle raise many kinds for a bad file
        raise PolicyLoadError(
            f"{model_path}: cannot be loaded as {algo} "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from e
    space = CatchEnv(**env_kwargs).observation_space
    shape = tuple(model.observation_space.shape)
    expected = tuple(space.shape)
    if shape != expected and shape != (expected[-1], *expected[:-1]):
        raise PolicyLoadError(
            f"{model_path}: the model takes observations of shape {shape}, "
            f"but the game gives {expected} (obs_type "
            f"{env_kwargs.get('obs_type', 'pixels')!r})"
        )
    return LoadedPolicy(name, _greedy_fn(model), env_kwargs, q_values=_q_values_fn(model, algo))


def _greedy_fn(model: Any) -> Any:
    def policy(obs: np.ndarray, states: Any = None) -> np.ndarray:
        actions, _ = model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64).reshape(len(obs))

    return policy


def _q_values_fn(model: Any, algo: str) -> Any:
    if algo not in OFF_POLICY:
        return None
    import torch

    def q_values(obs: np.ndarray) -> np.ndarray:
        tensor, _ = model.policy.obs_to_tensor(obs)
        with torch.no_grad():
            if algo == "sb3-qrdqn":
                q = model.policy.quantile_net(tensor).mean(dim=1)  # [N, Q, A] -> [N, A]
            else:
                q = model.policy.q_net(tensor)  # [N, A]
        return q.cpu().numpy()

    return q_values
