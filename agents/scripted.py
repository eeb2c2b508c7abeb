"""Scripted policies, the floor and the ceiling of every learning curve: random and the oracle.

``policy(obs [N, ...], states) -> int64 [N]`` (0 left, 1 stay, 2 right), ``states`` the
:class:`~catchrl.envs.BatchState` of the N games (a vector env's ``batch``, or
``BatchState.of([env.state])``): the oracle reads it, not the observation.
"""

from __future__ import annotations

import numpy as np

from catchrl.envs.core import BatchState, CatchParams, drift_batch


def landing_x(
    params: CatchParams, ball_x: np.ndarray, ball_y: np.ndarray, ball_vx: np.ndarray
) -> np.ndarray:
    """Left edge of each ball on the step it lands: int64 ``[N]`` (the core's bounce rule)."""
    if not params.drift:
        return ball_x.copy()
    steps_left = -(-(params.landing_y - ball_y) // params.ball_speed)  # [N]
    x, vx = ball_x.copy(), ball_vx.copy()
    for step in range(int(steps_left.max(initial=0))):
        moving = step < steps_left
        nx, nvx = drift_batch(params, x, vx)
        x, vx = np.where(moving, nx, x), np.where(moving, nvx, vx)
    return x


def landing_labels(params: CatchParams, states: BatchState) -> np.ndarray:
    """Where each of N games' balls will land, / width: float32 ``[N]`` (the landing labels)."""
    x = landing_x(params, states.ball_x, states.ball_y, states.ball_vx)
    return (x / params.width).astype(np.float32)


class RandomPolicy:
    """Uniformly random actions from its own generator (``seed`` None: fresh entropy)."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray, states: BatchState | None = None) -> np.ndarray:
        """int64 ``[N]`` random actions for a batch of N observations (states unused)."""
        return self.rng.integers(0, 3, size=len(obs), dtype=np.int64)


class OraclePolicy:
    """Moves the paddle's centre towards the centre of the ball where it will land.

    It knows the ball's speed, so with ``drift`` it aims at the predicted
    landing position (:func:`landing_x`). Among left/stay/right it picks the
    action from which the best follow-up action gets the paddle closest to its
    target; this two-step look-ahead gets past the book's "bounce" wall
    (from x = 340, right lands on 330 and only then can reach 350). Ties go to
    the closer position after this step, then to staying. It wins every ball
    that can be caught in the default game, and all but ``x = 400`` with
    ``spawn="book"``.
    """

    def __init__(self, params: CatchParams) -> None:
        self.params = params

    def act_state(self, states: BatchState) -> np.ndarray:
        """The oracle's action for each of N games: int64 ``[N]``."""
        p = self.params
        centre = landing_x(p, states.ball_x, states.ball_y, states.ball_vx) + p.ball_size / 2
        target = np.clip(centre - p.paddle_width / 2, 0, p.paddle_max_x)[:, None]  # [N, 1]
        moves = p.paddle_moves  # the paddle's next x per x and action, the core's walls
        one = moves[states.paddle_x]  # [N, 3]
        two = moves[one]  # [N, 3, 3]
        best_two = np.abs(two - target[:, :, None]).min(axis=2)  # [N, 3]
        dist_one = np.abs(one - target)  # [N, 3]
        not_stay = np.broadcast_to(np.array([1, 0, 1]), dist_one.shape)
        # Lexicographic order: look-ahead distance, then this step's distance, then stay.
        return np.lexsort((not_stay, dist_one, best_two), axis=-1)[:, 0].astype(np.int64)

    def __call__(self, obs: np.ndarray, states: BatchState | None) -> np.ndarray:
        """int64 ``[N]`` actions for N games; reads ``states``, not ``obs``."""
        if states is None:
            raise ValueError(
                "OraclePolicy reads the true game state: pass the BatchState "
                "of the N games (e.g. CatchVectorEnv.batch), not None"
            )
        return self.act_state(states)
