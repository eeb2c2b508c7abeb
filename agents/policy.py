"""A loaded agent (act, predict, Q-values on one observation or a batch): a model file, scripted."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(repr=False)
class Agent:
    """A loaded agent (or scripted policy) and the game it plays.

    ``policy(obs [N, ...], states) -> actions [N]`` is the evaluation harness's form;
    ``act``, ``predict`` (SB3's) and ``q_values`` take one observation or a batch.
    """

    name: str
    policy: Callable[[np.ndarray, Any], np.ndarray]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    q_values: Callable[[np.ndarray], np.ndarray] | None = None
    """Q-values of left, stay, right (``[3]``, or ``[N, 3]`` for a batch); None without."""
    source: str = ""
    """The file it was loaded from, in words (which model of a run), or ""."""
    obs_shape: tuple[int, ...] = ()
    needs_state: bool = False
    """It reads the game's true state (the oracle), not the observation."""

    def __post_init__(self) -> None:
        if self.q_values is not None:
            self.q_values = functools.partial(self._q_values, self.q_values)

    def make_env(self, render_mode: str | None = None) -> Any:
        """A ``CatchEnv`` of the agent's game."""
        from catchrl.envs import CatchEnv

        return CatchEnv(**self.env_kwargs, render_mode=render_mode)

    def _batch(self, obs: Any) -> tuple[np.ndarray, bool]:
        """``obs`` as a batch ``[N, ...]``, and whether it was one observation."""
        obs = np.asarray(obs)
        if obs.shape == self.obs_shape:
            return obs[None], True
        if obs.shape[1:] == self.obs_shape:
            return obs, False
        raise ValueError(
            f"{self.name} takes observations of shape {self.obs_shape} or a batch "
            f"[N, *{self.obs_shape}], got {obs.shape}"
        )

    def act(self, obs: Any, state: Any = None) -> Any:
        """The greedy action (0 left, 1 stay, 2 right), or ``[N]`` of them for a batch.

        ``state``: the game's true state (``env.unwrapped.state`` or a vector env's ``batch``),
        read by the oracle only.
        """
        from catchrl.envs import BatchState, CatchState

        batch, one = self._batch(obs)
        if self.needs_state and state is None:
            raise ValueError(
                f"{self.name} reads the game's state: agent.act(obs, env.unwrapped.state)"
            )
        states = BatchState.of([state]) if isinstance(state, CatchState) else state
        actions = np.asarray(self.policy(batch, states), dtype=np.int64).reshape(len(batch))
        return int(actions[0]) if one else actions

    def predict(
        self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict``: ``(actions, None)``, so ``evaluate_policy(agent, env)`` works."""
        return np.asarray(self.act(obs)), None

    def _q_values(self, batch_q_values: Callable, obs: Any) -> np.ndarray:
        batch, one = self._batch(obs)
        q = np.asarray(batch_q_values(batch), dtype=np.float32)
        return q[0] if one else q

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, obs_type={self.env_kwargs.get('obs_type')!r})"


def load_model(
    path: Path, algo: str | None = None, *, trust_sb3: bool = False
) -> tuple[Callable, Callable | None, tuple]:
    """A model file's greedy policy, its Q-values (None: not a Q-learner), its observation shape.

    ``.keras``: a Q-network; ``.zip``: an SB3 model, a pickle: refused unless ``trust_sb3``;
    ``.npz``: an RLlib module (no pickle: rebuilt from RLlib's spec).
    """
    if path.suffix not in (".keras", ".zip", ".npz"):
        raise ValueError(f"{path}: unknown model file type (expected .keras, .zip or .npz)")
    if path.suffix == ".zip" and not trust_sb3:
        raise ValueError(
            f"{path} is an SB3 file: loading it unpickles code; "
            "pass --sb3 (in Python trust_sb3=True) if you trust it"
        )
    if path.suffix == ".keras":
        from catchrl.agents.networks import compile_predict, load_q_network, q_output

        try:
            network = load_q_network(str(path))
        except Exception as e:  # Keras raises many kinds for a file that is not a model
            why = f"{type(e).__name__}: {str(e).strip()[:200]}"
            raise ValueError(f"{path}: not a loadable Keras model ({why})") from e
        forward = compile_predict(network, q_output)
        greedy = lambda obs, states=None: np.argmax(forward(obs), axis=1)  # noqa: E731
        return greedy, forward, tuple(network.input_shape[1:])
    if path.suffix == ".zip":
        from catchrl.agents.sb3 import OFF_POLICY, SB3Policy

        model = SB3Policy(path, algo)
    else:
        from catchrl.agents.rllib_algos import OFF_POLICY
        from catchrl.agents.rllib_policy import RLlibModule

        model = RLlibModule(path)
    return model.actions, (model.q_values if model.algo in OFF_POLICY else None), model.obs_shape


def model_agent(
    path: Path,
    name: str,
    env_kwargs: dict[str, Any],
    algo: str | None = None,
    source: str = "",
    trust_sb3: bool = False,
) -> Agent:
    """A model file (:func:`load_model`) as the agent of ``env_kwargs``' game.

    A pixel game without a ``frame_size`` gets the model's (its input is square).
    """
    policy, q_values, shape = load_model(path, algo, trust_sb3=trust_sb3)
    if "frame_size" not in env_kwargs and len(shape) == 3:  # (H, W, C), or SB3's (C, H, W)
        env_kwargs = {**env_kwargs, "frame_size": shape[1]}
    expected = tuple(_game(env_kwargs).observation_space.shape)
    if shape not in (expected, (expected[-1], *expected[:-1])):  # SB3 may store channels first
        raise ValueError(
            f"{path}: the model takes observations of shape {shape}, but the game gives "
            f"{expected} (obs_type {env_kwargs['obs_type']!r})"
        )
    return Agent(name, policy, env_kwargs, q_values, source, expected)


def scripted_agent(name: str, env_kwargs: dict[str, Any]) -> Agent:
    """``oracle`` (follows the ball: reads the game's state) or ``random`` (seed 0)."""
    from catchrl.agents.scripted import OraclePolicy, RandomPolicy

    game = _game(env_kwargs)
    shape = tuple(game.observation_space.shape)
    if name == "random":
        return Agent(name, RandomPolicy(seed=0), env_kwargs, obs_shape=shape)
    return Agent(name, OraclePolicy(game.params), env_kwargs, obs_shape=shape, needs_state=True)


def _game(env_kwargs: dict[str, Any]) -> Any:
    from catchrl.envs import CatchEnv

    try:
        return CatchEnv(**env_kwargs)
    except TypeError as e:  # an unknown game option: a ValueError, as the game's own
        raise ValueError(str(e)) from e
