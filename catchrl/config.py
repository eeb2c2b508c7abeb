"""Typed training configs: dataclasses with documented defaults, presets, TOML, overrides.

A :class:`TrainConfig` has three tables, ``[env]``, ``[agent]`` and ``[run]``.
Sources apply in this order, each overriding the last: the preset
(``--preset``, default ``fast``), a TOML file (``--config``), then
``--set table.key=value`` pairs from the command line. Every key is checked:
an unknown key, a value of the wrong type, a choice not allowed or a number out
of range is a :class:`ConfigError` naming it.

Each field's type says what it accepts (:mod:`catchrl.fields`): ``Literal[...]``
the choices, ``Annotated[int, Range(...)]`` the bounds. Rules across fields are
in :mod:`catchrl.rules`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from catchrl.envs import MAX_FRAME_SIZE, MAX_FRAME_STACK  # the env's own bounds
from catchrl.evaluation import MAX_EVAL_GAMES
from catchrl.fields import (
    COUNT,
    FRACTION,
    INT_MAX,
    NON_NEGATIVE,
    POSITIVE,
    ConfigError,
    Range,
    choices,
    coerce,
    field_range,
    field_specs,
    parse_override,
    read_toml,
    toml_value,
)
from catchrl.rules import check_game, validate

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
    "apply_overrides",
    "check_game",
    "choices",
    "config_from_dict",
    "config_to_dict",
    "field_range",
    "load_config",
    "load_run_config",
    "make_config",
    "parse_override",
    "read_toml",
    "to_toml",
]


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


@dataclass
class EnvConfig:
    """The game the agent trains and is evaluated on."""

    obs_type: Literal["pixels", "state", "grid"] = "pixels"
    """``pixels`` (4 stacked 80 x 80 frames), ``state`` or ``grid``."""
    num_envs: Annotated[int, Range(1, MAX_NUM_ENVS)] = 8
    """Games played at once by the native vector env; a training round follows each
    vector step (the ``fast`` preset: 16, measured: BENCHMARKS.md#the-main-job-dqn)."""
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
    lr_decay: bool = True
    """Decay the learning rate linearly to 0 over ``run.total_steps`` (PureJaxRL's flag;
    measured: BENCHMARKS.md#the-main-job-dqn)."""
    loss: Literal["huber", "mse"] = "huber"
    """``huber`` (Nature DQN) or ``mse`` (book)."""
    target_every: Annotated[int, COUNT] = 1
    """Gradient steps between target syncs (0: no target network, the book; Nature DQN:
    10,000 with ``tau`` 1); measured: BENCHMARKS.md#the-main-job-dqn."""
    tau: Annotated[float, Range(0.0, 1.0, low_open=True)] = 0.005
    """Each sync sets target = tau * online + (1 - tau) * target (1: a copy; 0.005: SB3's
    SAC/TD3 default)."""
    grad_clip_norm: Annotated[float, NON_NEGATIVE] = 10.0
    """Global gradient-norm clip (SB3's DQN: 10); 0 = off (book)."""
    batch_size: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 64
    """Minibatch size (book: 32)."""
    gradient_steps: Annotated[int, POSITIVE] = 3
    """Gradient steps per vector step of ``env.num_envs`` games (book: 1); measured:
    BENCHMARKS.md#the-main-job-dqn."""
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
    total_steps: Annotated[int, COUNT] = 30_000
    """Stop after this many env steps (transitions), or ``total_games``, whichever is first."""
    total_games: Annotated[int, COUNT] = 0
    """Stop after this many games (0: no limit by games)."""
    time_limit_s: Annotated[float, NON_NEGATIVE] = 0.0
    """Stop after this many seconds of training (0: no time limit)."""
    checkpoint_every: Annotated[int, COUNT] = 200
    """Games between checkpoints (book: a model every 100 games)."""
    eval_every: Annotated[int, COUNT] = 32
    """Games between greedy evaluations (on the validation games) during training (0: off)."""
    eval_games: Annotated[int, Range(0, MAX_EVAL_GAMES - 1)] = 1000
    """Games per evaluation (during training and at the end); 0 turns evaluation off."""
    target_win_rate: Annotated[float, FRACTION] = 1.0
    """Stop early once an evaluation reaches this greedy win rate (0: never); 1.0, every
    validation game won, so that the kept model holds on the test games (measured:
    BENCHMARKS.md#the-main-job-dqn)."""


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


# Presets: changes from the dataclass defaults (the pixel DQN; `fast` plays 16 games a round).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {"env": {"num_envs": 16}},  # measured: BENCHMARKS.md#the-main-job-dqn
    "fast-state": {
        # Measured: BENCHMARKS.md#the-main-job-dqn (fast-state).
        "env": {"obs_type": "state", "num_envs": 16},
        "agent": {
            "network": "mlp",
            "batch_size": 128,
            "gradient_steps": 8,
            "observe": 1_000,
            "epsilon_end": 0.05,
            "lr_decay": False,
        },
        "run": {"total_steps": 50_000, "target_win_rate": 0.99},
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
            "lr_decay": False,
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


def _update(cfg: TrainConfig, data: dict[str, Any], source: str) -> None:
    for table, values in data.items():
        if table in ("preset", "sweep"):  # [sweep]: the study table of `catchrl sweep`
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
        specs = field_specs(type(sub))
        for key, value in values.items():
            if key not in specs:
                raise ConfigError(
                    f"{source}: unknown key {table}.{key}; valid keys of "
                    f"[{table}]: {', '.join(specs)}"
                )
            setattr(sub, key, coerce(table, key, value, specs[key]))


def make_config(preset: str = "fast") -> TrainConfig:
    """The config of a named preset (see :data:`PRESETS`)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; presets are {list(PRESETS)}")
    cfg = TrainConfig(preset=preset)
    _update(cfg, PRESETS[preset], f"preset {preset!r}")
    return cfg


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``table.key=value`` strings (from ``--set``) to ``cfg`` and validate."""
    for text in overrides:
        table, key, value = parse_override(text)
        _update(cfg, {table: {key: value}}, f"--set {text}")
    validate(cfg)
    return cfg


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
    validate(cfg)
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
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
