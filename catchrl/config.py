"""Typed training configs: dataclasses with documented defaults, presets, TOML, overrides.

A :class:`TrainConfig` has three tables, ``[env]``, ``[agent]`` and ``[run]``.
Sources apply in this order, each overriding the last: the preset
(``--preset``, default ``fast``), a TOML file (``--config``), then
``--set table.key=value`` pairs from the command line. Every key is checked:
an unknown key, a value of the wrong type, a choice not allowed or a number out
of range is a :class:`ConfigError` naming it.

Each field's type says what it accepts, in one place: ``Literal[...]`` lists the
choices (read with :func:`choices`), ``Annotated[int, Range(...)]`` the bounds.
Checks across fields (the drift the game's width allows, n-step returns that
fit the game and the replay memory) are in :func:`_validate`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import tomllib

from catchrl.envs.limits import MAX_FRAME_SIZE, MAX_FRAME_STACK  # the env's own bounds
from catchrl.errors import CatchrlError

if TYPE_CHECKING:
    import argparse

__all__ = [
    "INT_MAX",
    "PRESETS",
    "SEED_MAX",
    "AgentConfig",
    "ConfigError",
    "EnvConfig",
    "Range",
    "RunConfig",
    "TrainConfig",
    "add_override_argument",
    "apply_overrides",
    "check_game",
    "choices",
    "config_from_dict",
    "config_to_dict",
    "field_range",
    "load_config",
    "load_run_config",
    "make_config",
    "to_toml",
]


class ConfigError(CatchrlError, ValueError):
    """A config key, value, preset or file is invalid; the message says which."""


INT_MAX = 2**63 - 1
"""Largest value of any int field: counters and checkpoints hold int64."""
SEED_MAX = 2**32 - 1
"""Largest seed: ``keras.utils.set_random_seed`` (and numpy's legacy seeding) take
``[0, 2**32)``."""
MAX_NUM_ENVS = 4096
"""Most games at once (one pixel observation of 4,096 games is 105 MB, before replay)."""
MAX_BALLS_PER_GAME = 10_000
"""Most balls per game (100 x the book's human game; one game is then 330,000 steps)."""
MAX_N_STEP = 100
"""Longest n-step return (the book's game is 33 steps; 100 covers three balls)."""
MAX_REPLAY_CAPACITY = 10_000_000
"""Most transitions in replay (pixels: ~64 GB at 80 x 80; the memory itself is checked
against the machine when the run starts)."""
MAX_BATCH_SIZE = 65_536
"""Largest minibatch."""
MAX_HIDDEN = 8192
"""Widest ``mlp`` hidden layer."""


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts: finite, ``low <= value <= high``.

    With ``low_open``, ``low`` itself is refused (``low < value <= high``).

    Attributes:
        low: Smallest value.
        high: Largest value.
        low_open: Whether ``low`` itself is refused.
        why: Where the bound comes from, shown in the error.

    """

    low: float
    high: float
    low_open: bool = False
    why: str = ""

    def check(self, name: str, value: float) -> None:
        """Raise :class:`ConfigError` naming ``name`` unless ``value`` is in range."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number, got {value!r}")
        above = value > self.low if self.low_open else value >= self.low
        if above and value <= self.high:
            return
        why = f" ({self.why})" if self.why else ""
        raise ConfigError(f"{name}: must be {self.describe(too_low=not above)}{why}, got {value!r}")

    def describe(self, too_low: bool = False) -> str:
        """The range in words: ``in [1, 4096]``, ``in (0, 1]``.

        Just ``>= 0`` (or ``> 0``) for a value ``too_low`` when there is no practical
        upper bound.
        """
        if too_low and self.high in (INT_MAX, math.inf):
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        lo = "(" if self.low_open else "["
        return f"in {lo}{_number(self.low)}, {_number(self.high)}]"


def _number(value: float) -> str:
    for power in (32, 63):
        if value == 2**power - 1:
            return f"2**{power} - 1"
    return f"{value:g}" if isinstance(value, float) else str(value)


COUNT = Range(0, INT_MAX)
"""Any count (0 usually meaning "off" or "no limit")."""
POSITIVE = Range(1, INT_MAX)
"""A count that must be at least 1."""
FRACTION = Range(0.0, 1.0)
"""A probability or rate in [0, 1]."""
NON_NEGATIVE = Range(0.0, math.inf)
"""Any finite number >= 0."""


@dataclass
class EnvConfig:
    """The game the agent trains and is evaluated on."""

    obs_type: Literal["pixels", "state", "grid"] = "pixels"
    """``pixels`` (4 stacked 80 x 80 frames), ``state`` or ``grid``."""
    num_envs: Annotated[int, Range(1, MAX_NUM_ENVS)] = 8
    """Games played at once by the native vector env; a training round follows each
    vector step. Pixels, with ``agent.augment_shift = 4`` (seeds 0-5 or 0-3, 500
    validation games every 32 games, 25k steps): 8 games a round (two gradient steps
    per 8 transitions) first reached 99 % at 13.7k / 15.8k / 13.7k / 11.6k / 10.6k /
    11.6k steps, 16 games at 18.0k / 12.7k / 23.2k / 18.0k at half the CPU per step
    (median CPU s to the first 99 %: 29.8 with 8 games, 21.3 with 16), 8 games with one
    gradient step at 19.0k / 13.7k / never / 18.0k. So 8: fewer steps, more CPU.
    Without the shifts 16 games learnt fastest (session 4)."""
    frame_size: Annotated[int, Range(2, MAX_FRAME_SIZE, why="the small CNN halves it")] = 80
    """Side of a pixel frame (book: 80)."""
    frame_stack: Annotated[int, Range(1, MAX_FRAME_STACK)] = 4
    """Frames per pixel observation (book: 4)."""
    balls_per_game: Annotated[int, Range(1, MAX_BALLS_PER_GAME)] = 1
    """Balls per game (book's trained game: 1)."""
    drift: Annotated[int, COUNT] = 0
    """Largest horizontal ball speed, px/step (0: straight down, as the book). At most
    half the width the ball moves in (190 px in the book's world, 2 cells in ``grid``),
    so that one step never crosses the world."""
    walls: Literal["clamp", "book"] = "clamp"
    """``clamp`` (default) or ``book`` (the trained game's bounce)."""
    spawn: Literal["visible", "book"] = "visible"
    """``visible`` (default) or ``book`` (ball x up to 400, partly off-screen)."""

    def game_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``CatchEnv`` / ``CatchVectorEnv`` (besides num_envs)."""
        kw: dict[str, Any] = {
            "obs_type": self.obs_type,
            "balls_per_game": self.balls_per_game,
            "drift": self.drift,
            "walls": self.walls,
            "spawn": self.spawn,
        }
        if self.obs_type == "pixels":
            kw.update(frame_size=self.frame_size, frame_stack=self.frame_stack)
        return kw

    def observation_space(self) -> Any:
        """One observation's space, read from a one-game env (no step taken).

        The env refuses absurd geometry before allocating anything.
        """
        from catchrl.envs import CatchVectorEnv

        env = CatchVectorEnv(1, **self.game_kwargs())
        env.close()
        return env.single_observation_space

    def steps_per_game(self) -> int:
        """Env steps in one game (33 a ball on the book's screen, 9 on bsuite's board)."""
        from catchrl.envs.observations import make_params

        kw = self.game_kwargs()
        game = {k: kw[k] for k in ("balls_per_game", "drift", "walls", "spawn")}
        return make_params(self.obs_type, None, game, "env").max_episode_steps


@dataclass
class AgentConfig:
    """The deep Q-network and how it learns."""

    network: Literal["book", "small", "tiny", "mlp"] = "tiny"
    """Q-network: ``book`` (the book's CNN, 3,356,835 params), ``small`` CNN (415,795),
    ``tiny`` CNN (103,251: a 4 x 4 pool first), ``mlp`` (state). Measured (seed 0, 1,000
    validation games every 32 games): ``tiny`` learns as fast per env step as ``small``
    (85 % vs 84 % at 13,728 steps, both with 2 gradient steps) at a quarter of the
    train-step CPU (15.8 vs 60 ms at batch 64), so it is the default. Its replay memory
    keeps each frame summed once by the pool (``catchrl.agents.pooled``), and the rest of
    the network trains on the sums: a training round of 8 games cost 9.8 ms instead of
    16.2 to 19.8 (session 11, with its two gradient steps in one call)."""
    dueling: bool = False
    """Dueling head (Wang et al. 2016)."""
    augment_shift: Annotated[int, Range(0, MAX_FRAME_SIZE - 1)] = 4
    """Pixels: train the Q-network on replayed frame stacks shifted sideways by a random
    integer in ``[-augment_shift, augment_shift]`` px, a fresh draw per sample and step
    (DrQ: Kostrikov et al. 2020), the edge columns repeated; the targets read the next
    frames unshifted. 0 = off (the ``book`` preset). Unused where the agent does not read
    the frames itself (``state``, ``grid``, ``perception``, a frozen ``encoder``). Less
    than ``env.frame_size``. Measured (seeds 0-3, 500 validation games every 32 games,
    25k steps): without it no seed reached 99 % (best 90.8-97.2 %); with 4 px (one
    paddle step) every seed did, at 12.7k / 18.0k / 23.2k / 18.0k steps; with 2 px three
    seeds of four. It costs ~0.2 ms a batch of 64."""
    hidden: Annotated[int, Range(1, MAX_HIDDEN)] = 128
    """Width of each of the ``mlp`` network's two hidden layers."""
    encoder: str = ""
    """A perception or imitation model (``.keras`` or its run directory, from ``catchrl
    supervised train``) whose pretrained conv encoder reads the frames for the agent
    (frozen, the default) or starts its Q-network (fine-tuned: see ``encoder_trainable``);
    "" = none. Frozen, play it with ``fast-state``'s agent (``--preset fast-state --set
    env.obs_type='pixels'``, as ``catchrl bench modules`` does): 99 % by 5-10k steps on the
    book's game, where with the pixel preset's settings it reached 94.8 % in 20k (seed 0,
    500 validation games every 32 games)."""
    encoder_trainable: bool = False
    """Freeze the pretrained encoder (False, the default): the agent plays from the
    encoder's features, computed once a frame and kept in replay, with the ``mlp`` head
    (two layers of ``hidden``), as the perceived-state route does. Or fine-tune it (True):
    the Q-network is the encoder, then the same head, all of it trained on the TD error.
    ``network`` is not used either way. Measured (``catchrl bench modules``, 3 seeds,
    1,000 test games every 32 games; docs/supervised_results.md, sessions 7-8): frozen,
    with ``fast-state``'s agent settings, 99 % on every seed (5.3-9.5k steps on the book's
    game, 7.4-21.1k on drift 5); fine-tuned, with the pixel settings, 99 % on one seed in
    three (13.7k and 15.8k steps; the others end at 41-78 % after 20k) at 3x the CPU per
    step. So frozen is the default."""
    perception: str = ""
    """A perception model (``.keras`` or its run directory, ``catchrl supervised train
    perception``): the agent plays the pixel game from the state it perceives, with the
    ``mlp`` network; "" = none."""
    aux_landing: Annotated[float, NON_NEGATIVE] = 0.0
    """Weight of the auxiliary loss on a ``landing_x`` head (where the ball will land,
    labels free from the simulator, stored in replay); 0 = no head. Measured on the book's
    game (3 seeds, weight 10): no gain, the same median steps to 99 % as without it."""
    gamma: Annotated[float, Range(0.0, 1.0, low_open=True)] = 0.99
    """Discount (book: 0.99)."""
    lr: Annotated[float, Range(0.0, 1.0, low_open=True)] = 1e-3
    """Adam learning rate (book: 1e-6; measured: 1e-3 reached 99 % on pixels in 19k
    steps, 5e-4 in 25k+)."""
    loss: Literal["huber", "mse"] = "huber"
    """``huber`` or ``mse`` (book: mse)."""
    double: bool = True
    """Double DQN targets (van Hasselt et al. 2016)."""
    target_update: Literal["hard", "polyak", "none"] = "hard"
    """``hard`` copy every ``target_period`` steps, ``polyak``, or ``none`` (book); once
    the run settles, ``settle_tau`` (when not 0) replaces it by Polyak averaging."""
    target_period: Annotated[int, POSITIVE] = 100
    """Gradient steps between hard target copies (Nature DQN: 10k; Catch is short: with
    200 and 5-step returns the pixel DQN was at 30 % after 8,448 steps, with 100 and
    10-step returns at 48 %)."""
    tau: Annotated[float, Range(0.0, 1.0, low_open=True)] = 0.005
    """Polyak rate when ``target_update = "polyak"``."""
    settle_at: Annotated[float, FRACTION] = 0.99
    """Validation win rate at which learning settles: from the first training-time
    evaluation that reaches it, the learning rate is ``settle_lr`` and the target
    network is averaged at ``settle_tau`` (0: never; the ``book`` preset never settles).
    It matters when a run trains on past its first 99 % (``run.target_win_rate`` above
    it, or 0). Measured on pixels (the ``fast`` preset of sessions 6-7, seeds 0-2, 1,000
    validation games every 64 games, to 70k steps): the lowest evaluation after the
    first 99 % was 98.3 / 97.3 / 98.7 % settling the learning rate to 1e-4, 94.0 / 95.4 /
    95.7 % without; see ``settle_tau`` for the target, and ``fast-state`` for ``state``."""
    settle_lr: Annotated[float, NON_NEGATIVE] = 1e-4
    """Learning rate once settled (see ``settle_at``; 0: keep ``lr``)."""
    settle_tau: Annotated[float, FRACTION] = 0.0005
    """Once settled (see ``settle_at``), the target network is set to the online one and
    from then on follows it by Polyak averaging at this rate per gradient step, instead
    of ``target_update``'s way (0: keep it); with ``settle_average`` it is also the
    network that plays. Unused without a target network (``target_update = "none"``).
    Measured on pixels (the ``fast`` preset, seeds 0-2, trained on to 5x the steps to
    99 % on 10,000 test games, 1,000 validation games every 64 games), the lowest
    validation evaluation after those steps: in session 11 (BENCHMARKS.md), playing the
    average, 99.1 / 98.0 / 98.3 % with 0.0005 and 98.9 / 97.8 / 98.0 % with 0.001;
    playing the online network, 96.8 / 98.6 / 97.3 % with 0.001. In session 10 (before
    the pooled replay; online network) 98.0 / 98.0 / 98.9 % with 0.001, 98.4 / 97.9 /
    99.5 % with the hard copies on (0), 97.8 % on seed 1 with 0.005; lowering
    ``settle_lr`` instead, to 3e-5 or 1e-5, went to 97.1 % (seed 1) and 97.3 % (seed
    0). ``fast-state`` keeps 0: its target is averaged from the start."""
    settle_epsilon: Annotated[float, FRACTION] = 0.0
    """Once settled (see ``settle_at``), ε is at least this (0: the schedule's alone), so
    that the replay memory keeps seeing states a near-perfect policy stops visiting.
    Measured on pixels (session 11, BENCHMARKS.md): 0.05 made it worse (lowest
    validation after the reach 97.3 / 96.5 / 94.3 %, against 96.8 / 98.6 / 97.3 % with
    0), so it is off; ``epsilon_end`` at 0.05 from the start held better but reached
    99 % later."""
    settle_average: bool = True
    """Once settled (see ``settle_at``) with ``settle_tau``, evaluations play, and the
    run saves (``model.keras``, ``best.keras``), the target network: the running average
    of the online network's weights (Polyak, ``settle_tau`` a gradient step: a time
    constant of 2,000 steps at 0.0005), which moves less between evaluations than the
    online network it follows. Training still acts with the online network. False:
    the online network throughout. Measured on pixels (session 11, 3 seeds to 5x the
    steps to 99 %): the lowest validation evaluation after the reach was 99.1 / 98.0 /
    98.3 % playing the average, 96.8 / 98.6 / 97.3 % playing the online network."""
    grad_clip_norm: Annotated[float, NON_NEGATIVE] = 10.0
    """Global gradient-norm clip; 0 turns it off."""
    n_step: Annotated[int, Range(1, MAX_N_STEP)] = 16
    """n-step returns (1: plain one-step TD, the book). The only reward comes on a
    game's 33rd step; 16-step returns carry it back 16x faster per target copy
    (measured on pixels, seed 0, at 8,448 steps: 5-step 30 %, 10-step 48 %, 16-step
    56 %; whole-game returns, 33, were slower: 74 % vs 85 % at 13,728 steps). At most
    one game long, and the replay memory must hold n_step + frame_stack steps per game."""
    batch_size: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 64
    """Minibatch size (book: 32); no larger than the replay memory can ever sample."""
    train_every: Annotated[int, POSITIVE] = 1
    """Vector-env steps between training rounds (book: 1)."""
    gradient_steps: Annotated[int, POSITIVE] = 2
    """Gradient steps per training round (2 on pixels: 86 % vs 71 % at 10,560 steps
    with one; the ``tiny`` network makes the second one cheap)."""
    prefetch: bool = True
    """Draw a training round's batches from the replay memory while the previous
    round's gradient steps run (a second thread), rather than after this round's
    vector step: the batches then miss that one step's transitions, which 16-step
    returns could mostly not use yet anyway. Unused with prioritized replay (a draw
    needs the last step's priorities). Checkpoints hold the batches drawn ahead, so
    a resumed run is still the same run. Measured (the ``fast`` preset, 2 CPU cores,
    session 11): a training round of 8 games in 9.4 ms instead of 11.5 when a round's
    steps were one XLA function; with each step its own (the final code) 10.0-10.1 ms
    against 9.8, no gain. ``fast`` keeps it on because its figures (BENCHMARKS.md,
    session 11) were measured with it: the batches, and so the runs, differ without it.
    ``fast-state`` and ``book`` keep it off."""
    replay_capacity: Annotated[
        int, Range(1, MAX_REPLAY_CAPACITY, why="10 million 80 x 80 frames are 60 GiB")
    ] = 50_000
    """Transitions kept in replay memory (book: 50,000)."""
    prioritized: bool = False
    """Prioritized replay (Schaul et al. 2016)."""
    epsilon: Literal["linear", "exponential", "book"] = "linear"
    """ε schedule: ``linear`` / ``exponential`` over env steps, or ``book`` (per game)."""
    epsilon_start: Annotated[float, FRACTION] = 1.0
    """ε after the observe phase (book: 0.1)."""
    epsilon_end: Annotated[float, FRACTION] = 0.01
    """Final ε (book: 0.0001)."""
    epsilon_duration: Annotated[int, COUNT] = 6_000
    """Env steps (linear/exponential) or games (book) over which ε decays (measured with
    10,000 and 6,000 on pixels: 6,000 learns sooner)."""
    observe: Annotated[int, COUNT] = 2_000
    """Random-play env steps (games for the ``book`` schedule) before learning (book: 100
    games)."""
    device: Literal["auto", "cpu", "gpu"] = "auto"
    """Where the Q-network runs: ``auto`` (the backend's choice: a GPU when one is
    visible), ``cpu``, or ``gpu`` (an error when the backend sees none)."""


@dataclass
class RunConfig:
    """How long to train, how often to save and evaluate."""

    seed: Annotated[int, Range(0, SEED_MAX, why="seeds are 32-bit for numpy and Keras")] = 0
    """Seeds the env, the agent, the replay memory and the network initialisation."""
    total_steps: Annotated[int, COUNT] = 50_000
    """Stop after this many env steps (transitions), or ``total_games``, whichever is first."""
    total_games: Annotated[int, COUNT] = 0
    """Stop after this many games (0: no limit by games)."""
    time_limit_s: Annotated[float, NON_NEGATIVE] = 0.0
    """Stop after this many seconds of training (0: no time limit)."""
    checkpoint_every: Annotated[int, COUNT] = 200
    """Games between checkpoints (book: a model every 100 games)."""
    eval_every: Annotated[int, COUNT] = 64
    """Games between greedy evaluations (on the validation games) during training (0: off)."""
    eval_games: Annotated[int, COUNT] = 1000
    """Games per evaluation (during training and at the end); 0 turns evaluation off."""
    target_win_rate: Annotated[float, FRACTION] = 0.99
    """Stop early once an evaluation reaches this greedy win rate (0: never)."""
    backend: Literal["tensorflow", "jax", "torch"] = "tensorflow"
    """Keras backend: ``tensorflow``, ``jax`` or ``torch``. Measured on 2 CPU cores, the
    ``fast`` preset (``catchrl bench dqn --part backends``, 3 seeds, BENCHMARKS.md): jax
    1.01x TensorFlow's time per env step and 1.16x its CPU, torch 2.45x and 3.41x; so
    TensorFlow it is."""


@dataclass
class TrainConfig:
    """A whole training run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The ``[env]`` table: the game."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """The ``[agent]`` table: the Keras DQN (unused by the SB3 algorithms)."""
    run: RunConfig = field(default_factory=RunConfig)
    """The ``[run]`` table: budget, seed, checkpoints, evaluations."""
    preset: str = "fast"
    """The preset this config started from."""
    algo: str = "dqn"
    """``dqn`` (the Keras DQN, uses ``[agent]``) or ``sb3-dqn``, ``sb3-ppo``... (``[sb3]``)."""
    sb3: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the SB3 algorithm, on top of catchrl's per-algorithm
    defaults; checked against the algorithm's signature by :mod:`catchrl.agents.sb3`."""
    rllib: dict[str, Any] = field(default_factory=dict)
    """Settings of an RLlib algorithm (``rllib-*``): its ``training()`` arguments and
    ``model``, ``num_env_runners``, ``games_per_iteration``, on top of catchrl's
    defaults; checked by :mod:`catchrl.agents.rllib_algos`."""


# Presets: changes from the dataclass defaults. The defaults are the fast pixel preset.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {},
    "fast-state": {
        # Measured (seed 0, 500 validation games every 32 games): with 3-step returns, a
        # target copy every 300 gradient steps and ε over 24,000 steps it never reached
        # 99 % in 46,464 steps (best 91.8 %); with 16-step returns, a copy every 100 and
        # ε over 6,000 it reached 99.4 % at 12,672 steps (its kept model: 100 % of 500
        # test games). Then the replay ratio, 3 seeds (2026-12-03, 500 validation games every
        # 32 games, 20k steps): one gradient step a round (16 transitions) reached 99 % at
        # 12,672 / never / 17,952 steps; 4 steps with a copy every 100 at 9,504 / 8,448 /
        # 8,448; 8 steps with a copy every 400 (every 50 rounds; it was every 100) at
        # 5,280 / 4,224 / 4,224, lowest evaluation after that 96.6 / 99.4 / 94.8 % (with
        # one step: 14.6 %). A state step is cheap (4-5 CPU s to 99 %), so 8 it is.
        # Settling to lr 1e-4 at the first 99 %, measured twice on 3 seeds to 30k steps
        # without the early stop (before and after evaluations stopped drawing from the
        # exploration generator, which redrew every run): the lowest evaluation in the
        # last 10k steps was 99.4 and 99.8 % with it, 95.0 and 99.4 % without; the lowest
        # after the first 99 % (5,280 / 4,224 / 6,336 steps now) 98.2 / 99.4 / 97.2 and
        # 95.8 / 93.4 / 99.6 % with it, 96.6 / 99.4 / 94.8 and 97.0 / 95.6 / 97.8 %
        # without. Later play is steadier settled, so it settles (the default since
        # pixels measured the same way); neither holds 98 % on every seed right after
        # the first 99 %. What did (2026-12-04, 3 seeds, 500 validation games every 32
        # games, 30k steps): Polyak averaging of the target (tau 0.005 each gradient
        # step) instead of a hard copy every 400. Lowest evaluation after the first
        # 99 %: 99.0 / 100 / 100 % with it, 95.8 / 93.4 / 99.6 % with hard copies (and
        # 91.2 / 94.0 / 100 % settling to lr 2e-5 instead); first 99 % at 7,392 / 5,280
        # / 7,392 steps with it, 5,280 / 4,224 / 6,336 without. A hard copy swaps the
        # bootstrap targets at once, every 50 rounds; Polyak moves them a little each step.
        "env": {"obs_type": "state", "num_envs": 16},
        "agent": {
            "network": "mlp",
            "hidden": 128,
            "lr": 1e-3,
            "n_step": 16,
            "target_update": "polyak",
            "tau": 0.005,
            "batch_size": 128,
            "gradient_steps": 8,
            "observe": 1_000,
            "epsilon_end": 0.05,
            "epsilon_duration": 6_000,
            "settle_tau": 0.0,
            "settle_average": False,
            "prefetch": False,
        },
        "run": {"total_steps": 50_000, "eval_every": 32},
    },
    "book": {
        # The book's run as faithfully as Keras 3 allows (SEED_CATCH.md, "The training run").
        "env": {"obs_type": "pixels", "num_envs": 1, "walls": "book", "spawn": "book"},
        "agent": {
            "network": "book",
            "lr": 1e-6,
            "loss": "mse",
            "double": False,
            "target_update": "none",
            "grad_clip_norm": 0.0,
            "batch_size": 32,
            "train_every": 1,
            "gradient_steps": 1,
            "replay_capacity": 50_000,
            "epsilon": "book",
            "epsilon_start": 0.1,
            "epsilon_end": 1e-4,
            "n_step": 1,
            "epsilon_duration": 5_000,
            "observe": 100,
            "settle_at": 0.0,
            "settle_tau": 0.0,
            "settle_average": False,
            "augment_shift": 0,
            "prefetch": False,
        },
        "run": {
            "total_steps": 0,
            "total_games": 5_100,
            "checkpoint_every": 100,
            "eval_every": 0,
            "eval_games": 100,
            "target_win_rate": 0.0,
        },
    },
}

_TABLES = {"env": EnvConfig, "agent": AgentConfig, "run": RunConfig}


@dataclass(frozen=True)
class _FieldSpec:
    """What one field accepts, read from its annotation."""

    type: type
    choices: tuple[Any, ...] = ()
    range: Range | None = None


def _spec(hint: Any) -> _FieldSpec:
    """Read ``bool``, ``int``, ``float``, ``str``, ``Literal[...]`` or ``Annotated[T, Range]``."""
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        ranges = [x for x in extras if isinstance(x, Range)]
        return dataclasses.replace(_spec(base), range=ranges[0] if ranges else None)
    if typing.get_origin(hint) is Literal:
        options = typing.get_args(hint)
        return _FieldSpec(type(options[0]), choices=options)
    if hint in (bool, int, float, str):
        return _FieldSpec(hint)
    raise TypeError(f"config field type {hint!r} is not supported")  # a bug here, not user input


@functools.cache
def _field_specs(cls: type) -> dict[str, _FieldSpec]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: _spec(hints[f.name]) for f in dataclasses.fields(cls)}


def choices(cls: type, name: str) -> tuple[Any, ...]:
    """The values a ``Literal`` field of a config dataclass allows; ``()`` if it is free.

    E.g. ``choices(EnvConfig, "obs_type")``: the observation types, in the order the
    annotation lists them.
    """
    return _field_specs(cls)[name].choices


def field_range(cls: type, name: str) -> Range | None:
    """The :class:`Range` of a numeric field of a config dataclass (None if it has none)."""
    return _field_specs(cls)[name].range


def _coerce(table: str, key: str, value: Any, spec: _FieldSpec) -> Any:
    """Check one value's type (ints are accepted for floats), choice and range."""
    name, typ = f"{table}.{key}", spec.type
    ok = (
        isinstance(value, bool)
        if typ is bool
        else isinstance(value, int) and not isinstance(value, bool)
        if typ is int
        else isinstance(value, (int, float)) and not isinstance(value, bool)
        if typ is float
        else isinstance(value, str)
    )
    if not ok:
        raise ConfigError(f"{name}: expected {typ.__name__}, got {type(value).__name__} {value!r}")
    value = float(value) if typ is float else value
    if spec.choices and value not in spec.choices:
        raise ConfigError(f"{name}: must be one of {spec.choices}, got {value!r}")
    if spec.range is not None:
        spec.range.check(name, value)
    return value


def _update(cfg: TrainConfig, data: dict[str, Any], source: str) -> None:
    for table, values in data.items():
        if table == "preset":
            continue
        if table == "algo":
            if not isinstance(values, str):
                raise ConfigError(f"{source}: algo must be a string, got {values!r}")
            cfg.algo = values
            continue
        if table in ("sb3", "rllib"):
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{table}] must be a table, got {values!r}")
            getattr(cfg, table).update(values)  # keys are checked by the framework's module
            continue
        if table not in _TABLES:
            raise ConfigError(
                f"{source}: unknown table [{table}]; tables are {[*_TABLES, 'sb3', 'rllib']}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{table}] must be a table, got {values!r}")
        sub = getattr(cfg, table)
        specs = _field_specs(type(sub))
        for key, value in values.items():
            if key not in specs:
                raise ConfigError(
                    f"{source}: unknown key {table}.{key}; valid keys of "
                    f"[{table}]: {', '.join(specs)}"
                )
            setattr(sub, key, _coerce(table, key, value, specs[key]))


def check_game(
    obs_type: str, game: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> Any:
    """The game's ``CatchParams``, or a :class:`ConfigError` naming what the game refuses.

    The game itself (:class:`catchrl.envs.CatchParams`) is the authority; this names
    the bound it applies to ``drift`` (half the width the ball moves in, so one step
    never crosses the world) before building it.

    Args:
        obs_type: ``pixels``, ``state`` or ``grid`` (``grid`` plays bsuite's 10 x 5 board).
        game: ``drift``, ``balls_per_game``, ``walls``, ``spawn`` (any subset).
        names: How to name each key in a message (default ``env.KEY``; the CLI passes
            ``{"drift": "--drift", ...}``).

    """
    from catchrl.envs.core import CatchParams

    names = {k: f"env.{k}" for k in ("drift", "balls_per_game", "walls", "spawn")} | dict(
        names or {}
    )
    make = CatchParams.bsuite if obs_type == "grid" else CatchParams
    game = dict(game)
    drift = game.pop("drift", 0)
    try:
        geometry = make(**game)
    except (TypeError, ValueError) as e:
        named = next((names.get(k, k) for k in game if k in str(e)), "the game")
        raise ConfigError(f"{named}: {e}") from None
    max_drift = (geometry.width - geometry.ball_size) // 2
    if not 0 <= drift <= max_drift:
        raise ConfigError(
            f"{names['drift']}: must be in [0, {max_drift}] for the {obs_type} game "
            f"(half the {geometry.width - geometry.ball_size} "
            f"{'cells' if obs_type == 'grid' else 'px'} the ball moves across, "
            f"so one step never crosses the world), got {drift}"
        )
    try:
        return make(**game, drift=drift)
    except (TypeError, ValueError) as e:  # pragma: no cover - the bound above is the game's
        raise ConfigError(f"{names['drift']}: {e}") from None


def _validate(cfg: TrainConfig) -> None:
    """Checks across fields; each field's own type, choice and range were checked on update."""
    if cfg.run.total_steps == 0 and cfg.run.total_games == 0 and cfg.run.time_limit_s == 0:
        raise ConfigError(
            "run.total_steps, run.total_games and run.time_limit_s are all 0: "
            "the run would never end"
        )
    env, a = cfg.env, cfg.agent
    game = {
        "drift": env.drift,
        "balls_per_game": env.balls_per_game,
        "walls": env.walls,
        "spawn": env.spawn,
    }
    params = check_game(env.obs_type, game)
    if cfg.algo != "dqn":
        return  # the [agent] table is the Keras DQN's; SB3 settings are checked by SB3's module
    _validate_modules(cfg)
    if a.n_step > params.max_episode_steps:
        raise ConfigError(
            f"agent.n_step: must be <= {params.max_episode_steps}, the length of one "
            f"{env.obs_type} game ({env.balls_per_game} ball(s)), got {a.n_step}"
        )
    if env.obs_type == "pixels" and a.augment_shift >= env.frame_size:
        raise ConfigError(
            f"agent.augment_shift: must be < env.frame_size ({env.frame_size}), "
            f"got {a.augment_shift}"
        )
    stack = env.frame_stack if env.obs_type == "pixels" else 1
    slots = a.replay_capacity // env.num_envs
    if slots < a.n_step + stack:
        raise ConfigError(
            f"agent.replay_capacity: {a.replay_capacity} leaves {slots} step(s) per game for "
            f"{env.num_envs} games; agent.n_step + frame stack need {a.n_step + stack}: "
            f"raise it to >= {(a.n_step + stack) * env.num_envs}"
        )
    sampleable = env.num_envs * (slots - (stack - 1) - a.n_step)
    if a.batch_size > sampleable:
        raise ConfigError(
            f"agent.batch_size: must be <= {sampleable}, the most transitions a replay "
            f"memory of {a.replay_capacity} can sample (learning would never start), "
            f"got {a.batch_size}"
        )


def _validate_modules(cfg: TrainConfig) -> None:
    """The supervised modules (encoder, perception, landing head) against the game."""
    if cfg.agent.encoder and cfg.env.obs_type != "pixels":
        raise ConfigError("agent.encoder (a pretrained frame encoder) needs env.obs_type 'pixels'")
    if cfg.agent.perception:
        if cfg.env.obs_type != "pixels" or cfg.agent.network != "mlp":
            raise ConfigError(
                "agent.perception (play pixels from the perceived state) needs "
                "env.obs_type 'pixels' and agent.network 'mlp'"
            )
        if cfg.agent.encoder:
            raise ConfigError("agent.perception and agent.encoder exclude each other")
    elif cfg.agent.network == "mlp" and cfg.env.obs_type == "pixels" and not cfg.agent.encoder:
        raise ConfigError(
            "agent.network = 'mlp' needs env.obs_type 'state' or 'grid' (or agent.perception, "
            "or agent.encoder)"
        )
    if cfg.agent.aux_landing and cfg.agent.encoder:
        raise ConfigError(
            "agent.aux_landing (a landing head) is not available with "
            "agent.encoder; use one or the other"
        )
    if cfg.agent.network != "mlp" and cfg.env.obs_type != "pixels":
        raise ConfigError(
            f"agent.network = {cfg.agent.network!r} is a CNN for pixels; "
            f"use 'mlp' with env.obs_type {cfg.env.obs_type!r}"
        )


def make_config(preset: str = "fast") -> TrainConfig:
    """The config of a named preset (see :data:`PRESETS`)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; presets are {list(PRESETS)}")
    cfg = TrainConfig(preset=preset)
    _update(cfg, PRESETS[preset], f"preset {preset!r}")
    return cfg


def add_override_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add the repeatable ``--set TABLE.KEY=VALUE`` option (into ``args.overrides``)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help=help,
    )


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``table.key=value``; the value is read as TOML (so ``1e-4``, ``true``, ``"x"``)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set {text!r}: expected table.key=value, e.g. agent.lr=1e-4")
    name, raw = text.split("=", 1)
    table, key = name.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: take it as a string
    return table, key, value


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``table.key=value`` strings (from ``--set``) to ``cfg`` and validate."""
    for text in overrides:
        table, key, value = parse_override(text)
        _update(cfg, {table: {key: value}}, f"--set {text}")
    _validate(cfg)
    return cfg


def read_toml(path: str | Path) -> dict[str, Any]:
    """A config file's TOML tables.

    Raises:
        ConfigError: The file is missing, not UTF-8 or not TOML (one line saying which).

    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}): corrupt?") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e


def load_config(
    preset: str = "fast", path: str | Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Preset, then TOML file, then ``--set`` overrides; validated."""
    data = read_toml(path) if path is not None else {}
    return _from_tables(data, preset, str(path), overrides or [])


def load_run_config(path: str | Path) -> TrainConfig:
    """A run directory's ``config.toml``, as the run trained.

    Like :func:`load_config`, except that a field the file lacks and
    :data:`_ADDED_LATER` lists takes the value runs had before it existed (not the
    preset's current default): a run saved before it resumes and loads as it trained.
    """
    return _from_tables(_with_added_later(read_toml(path)), "fast", str(path), [])


def _from_tables(
    data: dict[str, Any], preset: str, where: str, overrides: list[str]
) -> TrainConfig:
    """The preset ``data`` names (else ``preset``), then its tables, then ``overrides``."""
    cfg = make_config(str(data.get("preset", preset)))
    _update(cfg, data, where)
    return apply_overrides(cfg, overrides)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The config as nested plain dicts."""
    return dataclasses.asdict(cfg)


# Fields added after runs were saved, with the value that keeps such a run as it
# trained: a checkpoint saved without the field resumes with it.
_ADDED_LATER: dict[tuple[str, str], Any] = {
    ("agent", "augment_shift"): 0,
    ("agent", "settle_tau"): 0.0,
    ("agent", "prefetch"): False,
    ("agent", "settle_epsilon"): 0.0,
    ("agent", "settle_average"): False,
}


def _with_added_later(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each :data:`_ADDED_LATER` field its table lacks set to the old value."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for (table, key), value in _ADDED_LATER.items():
        if isinstance(data.get(table), dict) and key not in data[table]:
            data[table][key] = value
    return data


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a config saved with :func:`config_to_dict` (checked like a TOML file).

    A field the saved config lacks takes its default, except those in
    :data:`_ADDED_LATER`, which take the value the run trained with before they existed.
    """
    cfg = TrainConfig(preset=str(data.get("preset", "fast")))
    data = _with_added_later(data)
    _update(
        cfg,
        {k: v for k, v in data.items() if k in (*_TABLES, "algo", "sb3", "rllib")},
        "saved config",
    )
    _validate(cfg)
    return cfg


def to_toml(cfg: TrainConfig) -> str:
    """The config as a TOML document (loadable with ``--config``)."""
    lines = [f'preset = "{cfg.preset}"', f'algo = "{cfg.algo}"']
    tables = {t: dataclasses.asdict(getattr(cfg, t)) for t in _TABLES}
    if cfg.sb3:
        tables["sb3"] = cfg.sb3
    if cfg.rllib:
        tables["rllib"] = cfg.rllib
    for table, values in tables.items():
        lines.append(f"\n[{table}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)
