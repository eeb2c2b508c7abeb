"""One evaluation harness for every policy: ours, SB3's, scripted, imitation.

A policy is any callable ``policy(obs[N, ...], states) -> actions[N]``, where
``states`` is the vector env's true :class:`~catchrl.envs.BatchState` (only
scripted policies read it). Game ``j`` of an evaluation is seeded with
``seed + j`` whatever the batch size, so two policies evaluated with the same
seed play exactly the same balls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from catchrl.envs import BatchState, CatchVectorEnv

__all__ = [
    "EVAL_SEED",
    "MAX_EVAL_GAMES",
    "TEST_SEED",
    "VALIDATION_SEED",
    "EvalResult",
    "Policy",
    "evaluate",
    "wilson_interval",
]

Policy = Callable[[np.ndarray, BatchState], np.ndarray]
VALIDATION_SEED = 2**40
"""First seed of the validation games: training-time evaluations and every stop
rule (target win rate, the kept best model) play game ``j`` from ``VALIDATION_SEED + j``."""
TEST_SEED = 2**41
"""First seed of the test games: ``catchrl eval``, the final evaluation of a run
and every reported result. No part of training plays them."""
MAX_EVAL_GAMES = 2**32
"""Evaluations play fewer games than this, so the seed ranges stay apart: training
games come from ``run.seed + i`` (< 2**33 for any 32-bit seed and ``num_envs``),
validation from ``[VALIDATION_SEED, VALIDATION_SEED + MAX_EVAL_GAMES)``, test
from ``[TEST_SEED, TEST_SEED + MAX_EVAL_GAMES)``."""
EVAL_SEED = TEST_SEED
"""The default seed of :func:`evaluate`: the test games."""


def wilson_interval(wins: int, games: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a win rate (95 % for z = 1.96); sound near 0 and 1."""
    if games <= 0:
        return 0.0, 1.0
    p = wins / games
    denom = 1.0 + z * z / games
    centre = (p + z * z / (2 * games)) / denom
    half = z * math.sqrt(p * (1 - p) / games + z * z / (4 * games * games)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class EvalResult:
    """Outcome of an evaluation."""

    games: int
    wins: int
    mean_length: float
    mean_reward: float

    @property
    def win_rate(self) -> float:
        """Fraction of games won (for multi-ball games: balls caught / balls)."""
        return self.wins / self.games if self.games else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        """95 % Wilson confidence interval of the win rate."""
        return wilson_interval(self.wins, self.games)

    def summary(self) -> str:
        """One line: win rate with its 95 % interval, mean episode length."""
        lo, hi = self.ci95
        return (
            f"win rate {100 * self.win_rate:.2f}% ({self.wins}/{self.games}), "
            f"95% CI [{100 * lo:.2f}%, {100 * hi:.2f}%], "
            f"mean episode length {self.mean_length:.1f}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, for JSON."""
        lo, hi = self.ci95
        return {
            "games": self.games,
            "wins": self.wins,
            "win_rate": self.win_rate,
            "ci95_low": lo,
            "ci95_high": hi,
            "mean_length": self.mean_length,
            "mean_reward": self.mean_reward,
        }


def evaluate(
    policy: Policy, games: int = 1000, seed: int = EVAL_SEED, num_envs: int = 250, **env_kwargs: Any
) -> EvalResult:
    """Play ``games`` seeded games with ``policy`` and count the wins.

    Args:
        policy: ``policy(obs[N, ...], states) -> actions[N]`` (greedy for learnt agents).
        games: Number of games.
        seed: Game ``j`` is seeded with ``seed + j``.
        num_envs: Games played at once (changes speed, not results).
        **env_kwargs: ``CatchVectorEnv`` arguments: ``obs_type``, game parameters...

    Returns:
        The :class:`EvalResult`. A game of several balls counts each ball: wins
        are balls caught and ``games`` becomes balls played.

    """
    if not 0 < games < MAX_EVAL_GAMES:
        raise ValueError(f"games must be in 1..{MAX_EVAL_GAMES - 1}, got {games}")
    num_envs = max(1, min(num_envs, games))
    env = CatchVectorEnv(num_envs, autoreset_mode="next_step", **env_kwargs)
    balls = env.params.balls_per_game
    wins = played = 0
    length_sum = reward_sum = 0.0  # running sums: memory stays flat for any number of games
    for start in range(0, games, num_envs):
        count = min(num_envs, games - start)
        obs, _ = env.reset(seed=seed + start)
        done = np.zeros(num_envs, dtype=bool)
        length = np.zeros(num_envs, dtype=np.int64)
        total = np.zeros(num_envs, dtype=np.float64)
        caught = np.zeros(num_envs, dtype=np.int64)
        while not done[:count].all():
            actions = np.asarray(policy(obs, env.batch), dtype=np.int64)
            obs, reward, terminated, truncated, _ = env.step(actions)
            live = ~done
            length += live
            total += np.where(live, reward, 0.0)
            caught += live & (reward > 0)
            done |= terminated | truncated
        wins += int(caught[:count].sum())
        played += count * balls
        length_sum += float(length[:count].sum())
        reward_sum += float(total[:count].sum())
    env.close()
    return EvalResult(
        games=played,
        wins=wins,
        mean_length=length_sum / games,
        mean_reward=reward_sum / games,
    )
