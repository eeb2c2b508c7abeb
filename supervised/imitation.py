"""Imitation: classify the oracle's actions from frames (the book's "treat it as classification").

The oracle (:class:`~catchrl.agents.scripted.OraclePolicy`) labels every
frame stack of an ``"expert"`` dataset with the action it would take there;
a CNN (any perception architecture's encoder + a softmax head over
left/stay/right) learns to copy it; the saved model plays as any agent
(``catchrl eval RUN/model.keras``, ``catchrl.load_agent``). :func:`fill_replay_with_expert`
seeds a DQN's replay memory with expert games, the book's other suggestion.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from catchrl.envs import CatchParams, CatchVectorEnv
from catchrl.supervised.perception import build_frames_model

__all__ = ["build_imitation_model", "fill_replay_with_expert"]

NUM_ACTIONS = 3


def build_imitation_model(
    arch: str = "small",
    input_shape: tuple[int, int, int] = (80, 80, 4),
    num_actions: int = NUM_ACTIONS,
) -> keras.Model:
    """Build a classifier of actions from raw frames.

    Args:
        arch: One of :data:`~catchrl.supervised.perception.ARCHITECTURES`.
        input_shape: ``(height, width, frames)``.
        num_actions: Classes (left, stay, right).

    Returns:
        An uncompiled ``keras.Model`` named ``"imitation_<arch>"``: uint8 frames
        ``[B, H, W, C]`` -> action logits ``[B, num_actions]`` (float32); train it
        with ``SparseCategoricalCrossentropy(from_logits=True)``.

    Raises:
        ValueError: unknown architecture.

    """
    return build_frames_model(arch, input_shape, num_actions, "action_logits", f"imitation_{arch}")


def fill_replay_with_expert(
    memory: Any,
    games: int,
    seed: int = 0,
    params: CatchParams | None = None,
    obs_type: str = "pixels",
    epsilon: float = 0.0,
    **env_kwargs: Any,
) -> int:
    """Add ``games`` games played by the oracle to a replay memory.

    Plays ``memory.num_envs`` games at a time on a
    :class:`~catchrl.envs.CatchVectorEnv` in ``autoreset_mode="same_step"``
    (what :class:`~catchrl.agents.replay.ReplayMemory` expects) and adds every
    transition with ``memory.add(obs, actions, rewards, terminated, truncated)``.

    Args:
        memory: A ``ReplayMemory`` (anything with ``num_envs`` and that ``add``).
        games: Games to add (rounded up to a multiple of ``memory.num_envs``).
        seed: The env's game ``i`` is seeded with ``seed + i`` (its later games
            continue that generator); exploration draws from
            ``numpy.random.default_rng(seed)``.
        params: The game (default: the book's).
        obs_type: Observations to store; must match the memory's ``obs_shape``.
        epsilon: Probability of a random action instead of the oracle's, so the
            memory also holds recoveries from mistakes (0: pure expert play).
        **env_kwargs: ``frame_size`` / ``frame_stack`` of the env.

    Returns:
        The number of transitions added.

    """
    from catchrl.agents.scripted import OraclePolicy

    if games < 1:
        raise ValueError(f"games must be >= 1, got {games}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    params = params or CatchParams()
    n = int(memory.num_envs)
    env = CatchVectorEnv(
        n, obs_type=obs_type, autoreset_mode="same_step", params=params, **env_kwargs
    )
    oracle, rng = OraclePolicy(params), np.random.default_rng(seed)
    rounds = -(-games // n)
    obs, _ = env.reset(seed=seed)
    added = 0
    for _ in range(rounds * params.max_episode_steps):
        actions = np.asarray(oracle.act_state(env.batch), dtype=np.int64)
        if epsilon > 0:
            actions = np.where(rng.random(n) < epsilon, rng.integers(0, 3, size=n), actions)
        next_obs, rewards, terminated, truncated, _ = env.step(actions)
        memory.add(obs, actions, rewards, terminated, truncated)
        obs, added = next_obs, added + n
    env.close()
    return added
