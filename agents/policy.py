"""A loaded policy, as the evaluation harness and ``catchrl watch`` take it, and its error.

Every loader (scripted, a Keras ``.keras`` Q-network, an SB3 ``.zip``) returns
a :class:`LoadedPolicy`: ``policy(obs[N, ...], states) -> actions[N]``, the
game it expects, and where it has them ``q_values(obs[N, ...]) -> [N, A]``.
The application's :func:`catchrl.policies.load_policy` picks the loader from
what the user names; the loaders of the agents' own formats live here and in
:mod:`catchrl.agents.sb3_policy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LoadedPolicy", "PolicyLoadError", "load_keras_policy"]


class PolicyLoadError(ValueError):
    """The named agent cannot be loaded; the message says why."""


@dataclass
class LoadedPolicy:
    """A policy ready for the evaluation harness, with the game it expects.

    Attributes:
        name: Display name.
        policy: ``policy(obs [N, ...], states) -> actions [N]`` (int).
        env_kwargs: The game it plays (``CatchEnv`` keyword arguments).
        q_values: ``q_values(obs [N, ...]) -> [N, A]`` float32, or ``None``.
        source: The file it was loaded from, in words (which model of a run), or "".

    """

    name: str
    policy: Callable[[np.ndarray, Any], np.ndarray]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    q_values: Callable[[np.ndarray], np.ndarray] | None = None
    source: str = ""


def load_keras_policy(
    model_path: str | Path, env_kwargs: dict[str, Any], name: str
) -> LoadedPolicy:
    """A saved Keras Q-network (``.keras``) as a greedy :class:`LoadedPolicy`.

    Args:
        model_path: The ``.keras`` file.
        env_kwargs: The game the policy will play (obs type and variants).
        name: Display name.

    Raises:
        PolicyLoadError: The file is not a loadable Keras model, or the model's
            observation shape is not the game's.

    """
    from catchrl.agents.networks import compile_forward
    from catchrl.agents.networks import load_q_network
    from catchrl.envs import CatchEnv

    try:
        model = load_q_network(str(model_path))
    except Exception as e:
        raise PolicyLoadError(
            f"{model_path}: not a loadable Keras model "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else e!r})"
        ) from e
    expected = tuple(CatchEnv(**env_kwargs).observation_space.shape)
    got = tuple(model.input_shape[1:])
    if got != expected:
        raise PolicyLoadError(
            f"{model_path}: the model takes observations of shape {got}, "
            f"but the game gives {expected} (obs_type "
            f"{env_kwargs.get('obs_type', 'pixels')!r})"
        )
    forward = compile_forward(model)

    def q_fn(obs: np.ndarray) -> np.ndarray:
        return np.asarray(forward(np.asarray(obs)), dtype=np.float32)

    def policy(obs: np.ndarray, states: Any = None) -> np.ndarray:
        return np.argmax(q_fn(obs), axis=1)

    return LoadedPolicy(name, policy, env_kwargs, q_values=q_fn)
