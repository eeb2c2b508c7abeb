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

from catchrl.envs import MAX_FRAME_SIZE, MAX_FRAME_STACK  # the env's own bounds
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
    """The Keras DQN (``algo = "dqn"``): its network and how it learns."""

    network: Literal["book", "small", "tiny", "mlp"] = "tiny"
    """``book`` (the book's CNN), ``small``, ``tiny`` (a 4 x 4 pool first) or ``mlp``
    (state); measured: BENCHMARKS.md#the-main-job-dqn."""
    dueling: bool = False
    """Dueling head (Wang et al. 2016)."""
    augment_shift: Annotated[int, Range(0, MAX_FRAME_SIZE - 1)] = 4
    """Pixels: replayed stacks shifted sideways by up to this many px (DrQ, Kostrikov et
    al. 2020); 0 = off (book). Measured: BENCHMARKS.md#the-main-job-dqn."""
    encoder: str = ""
    """A perception or imitation model (``.keras`` or its run directory) whose conv
    encoder reads the frames for the agent; "" = none (docs/supervised_results.md)."""
    encoder_trainable: bool = False
    """Fine-tune the encoder on the TD error (False: frozen, its features kept in
    replay; measured better: docs/supervised_results.md)."""
    perception: str = ""
    """A perception model: the ``mlp`` agent plays pixels from the state it perceives."""
    aux_landing: Annotated[float, NON_NEGATIVE] = 0.0
    """Weight of an auxiliary ``landing_x`` head's squared error; 0 = no head."""
    n_step: Annotated[int, Range(1, MAX_N_STEP)] = 16
    """n-step returns (book: 1); measured: BENCHMARKS.md#the-main-job-dqn."""
    lr: Annotated[float, Range(0.0, 1.0, low_open=True)] = 1e-3
    """Adam learning rate (book: 1e-6); measured: BENCHMARKS.md#the-main-job-dqn."""
    lr_decay: bool = False
    """Decay the learning rate linearly to 0 over ``run.total_steps`` (PureJaxRL)."""
    loss: Literal["huber", "mse"] = "huber"
    """``huber`` (Nature DQN) or ``mse`` (book)."""
    target_every: Annotated[int, COUNT] = 100
    """Gradient steps between target syncs (0: no target network, the book)."""
    tau: Annotated[float, Range(0.0, 1.0, low_open=True)] = 1.0
    """Each sync sets target = tau * online + (1 - tau) * target (1: a copy, Nature DQN)."""
    grad_clip_norm: Annotated[float, NON_NEGATIVE] = 10.0
    """Global gradient-norm clip (SB3's DQN: 10); 0 = off (book)."""
    batch_size: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 64
    """Minibatch size (book: 32)."""
    gradient_steps: Annotated[int, POSITIVE] = 2
    """Gradient steps per vector step of ``env.num_envs`` games (book: 1)."""
    replay_capacity: Annotated[
        int, Range(1, MAX_REPLAY_CAPACITY, why="10 million 80 x 80 frames are 60 GiB")
    ] = 50_000
    """Transitions kept in replay memory (book: 50,000)."""
    prioritized: bool = False
    """Prioritized replay (Schaul et al. 2016), β annealed to 1 over the run."""
    epsilon: Literal["linear", "book"] = "linear"
    """ε from 1 to ``epsilon_end`` over env steps, or ``book`` (from 0.1, per game)."""
    epsilon_end: Annotated[float, FRACTION] = 0.01
    """Final ε (book: 0.0001)."""
    epsilon_duration: Annotated[int, COUNT] = 6_000
    """Env steps (games for ``book``) over which ε decays (book: 2,100 games)."""
    observe: Annotated[int, COUNT] = 2_000
    """Random-play env steps (games for ``book``) before learning (book: 100 games)."""


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
        # Measured: BENCHMARKS.md#the-main-job-dqn (fast-state).
        "env": {"obs_type": "state", "num_envs": 16},
        "agent": {
            "network": "mlp",
            "target_every": 1,
            "tau": 0.005,
            "batch_size": 128,
            "gradient_steps": 8,
            "observe": 1_000,
            "epsilon_end": 0.05,
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
            "target_every": 0,
            "grad_clip_norm": 0.0,
            "batch_size": 32,
            "gradient_steps": 1,
            "epsilon": "book",
            "epsilon_end": 1e-4,
            "n_step": 1,
            "epsilon_duration": 5_000,
            "observe": 100,
            "augment_shift": 0,
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
    """A run directory's ``config.toml``, as the run trained."""
    return _from_tables(read_toml(path), "fast", str(path), [])


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


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a config saved with :func:`config_to_dict` (checked like a TOML file)."""
    cfg = TrainConfig(preset=str(data.get("preset", "fast")))
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
