"""One evaluation harness for every policy; game ``j`` is seeded ``seed + j`` at any batch size."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from catchrl.envs import BatchState, CatchVectorEnv

Policy = Callable[[np.ndarray, BatchState], np.ndarray]  # (obs [N, ...], true states) -> [N]
VALIDATION_SEED = 2**40
"""First seed of the validation games: training-time evaluations and the stop rules."""
TEST_SEED = 2**41
"""First seed of the test games (``catchrl eval``, a run's final evaluation): never trained on."""
MAX_EVAL_GAMES = 2**32
"""Evaluations play fewer games, so training (< 2**33), validation and test seeds stay apart."""
EVAL_NUM_ENVS = 250
"""Games :func:`evaluate` plays at once (a learner's memory estimate counts them)."""


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
    """An evaluation's outcome, counted in balls (one a game unless ``balls_per_game``)."""

    games: int  # balls played (the JSON key users read)
    wins: int  # balls caught
    mean_length: float  # steps per game played (a whole game, all its balls)
    mean_reward: float  # reward per game played

    @property
    def win_rate(self) -> float:
        """Balls caught / balls played."""
        return self.wins / self.games if self.games else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        """95 % Wilson interval of the win rate."""
        return wilson_interval(self.wins, self.games)

    def summary(self) -> str:
        """One line: the win rate with its 95 % interval, the mean episode length."""
        lo, hi = self.ci95
        return (
            f"win rate {100 * self.win_rate:.2f}% ({self.wins}/{self.games}), "
            f"95% CI [{100 * lo:.2f}%, {100 * hi:.2f}%], "
            f"mean episode length {self.mean_length:.1f}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, for JSON."""
        lo, hi = self.ci95
        return {**asdict(self), "win_rate": self.win_rate, "ci95_low": lo, "ci95_high": hi}


@functools.cache
def start_seeds(first: int, **env_kwargs: Any) -> tuple[int, ...] | None:
    """Per ball start x, the first seed from ``first`` starting there (one ball, no drift)."""
    env = CatchVectorEnv(1024, **{**env_kwargs, "obs_type": "state"})
    try:
        if env.params.balls_per_game != 1 or env.params.drift:
            return None
        found: dict[int, int] = {}
        starts = env.params.spawn_max_x + 1
        block = first
        while len(found) < starts:  # 2,661 seeds for the 381 starts of the default game
            env.reset(seed=block)
            for i, x in enumerate(env.batch.ball_x.tolist()):
                found.setdefault(x, block + i)
            block += env.num_envs
        return tuple(found[x] for x in range(starts))
    finally:
        env.close()


def evaluate(
    policy: Policy,
    games: int = 1000,
    seed: int = TEST_SEED,
    num_envs: int = EVAL_NUM_ENVS,
    every_start: bool = False,
    **env_kwargs: Any,
) -> EvalResult:
    """Play ``games`` games (``num_envs`` at once); ``every_start``: each ball start once."""
    if not 0 < games < MAX_EVAL_GAMES:
        raise ValueError(f"games must be in 1..{MAX_EVAL_GAMES - 1}, got {games}")
    seeds = start_seeds(seed, **env_kwargs) if every_start else None
    seeds = seeds if seeds is not None and len(seeds) <= games else None
    games = len(seeds) if seeds is not None else games
    num_envs = max(1, min(num_envs, games))
    env = CatchVectorEnv(num_envs, autoreset_mode="next_step", **env_kwargs)
    sums = np.zeros(3)  # balls caught, steps, reward of the games played: flat memory at any games
    for start in range(0, games, num_envs):
        count = min(num_envs, games - start)
        if seeds is None:
            obs, _ = env.reset(seed=seed + start)
        else:  # the batch's unplayed games get seed 0
            obs, _ = env.reset(seed=[*seeds[start : start + count], *[0] * (num_envs - count)])
        done = np.zeros(num_envs, dtype=bool)
        counts = np.zeros((3, num_envs))  # per game, as sums: small ints, exact in floats
        while not done[:count].all():
            actions = np.asarray(policy(obs, env.batch), dtype=np.int64)
            obs, reward, terminated, truncated, _ = env.step(actions)
            counts += ~done * np.stack([reward > 0, np.ones(num_envs), reward])  # [3, N]
            done |= terminated | truncated
        sums += counts[:, :count].sum(axis=1)
    env.close()
    balls = games * env.params.balls_per_game
    caught, length, total = sums.tolist()
    return EvalResult(balls, int(caught), mean_length=length / games, mean_reward=total / games)
