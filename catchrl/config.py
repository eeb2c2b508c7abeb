"""Typed training configs: dataclasses with documented defaults, presets, TOML, overrides.

A :class:`TrainConfig` has three tables, ``[env]``, ``[agent]`` and ``[run]``.
Sources apply in this order, each overriding the last: the preset
(``--preset``, default ``fast``), a TOML file (``--config``), then
``--set table.key=value`` pairs from the command line. Every key is checked:
an unknown key or a value of the wrong type is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

__all__ = [
    "PRESETS",
    "AgentConfig",
    "ConfigError",
    "EnvConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "make_config",
    "to_toml",
]


class ConfigError(ValueError):
    """A config key, value, preset or file is invalid; the message says which."""


@dataclass
class EnvConfig:
    """The game the agent trains and is evaluated on."""

    obs_type: str = "pixels"
    """``pixels`` (4 stacked 80 x 80 frames), ``state`` or ``grid``."""
    num_envs: int = 16
    """Games played at once by the native vector env (measured on 2 cores: 16 games
    per gradient step of batch 64 learns pixels fastest in wall-clock time)."""
    frame_size: int = 80
    """Side of a pixel frame (book: 80)."""
    frame_stack: int = 4
    """Frames per pixel observation (book: 4)."""
    balls_per_game: int = 1
    """Balls per game (book's trained game: 1)."""
    drift: int = 0
    """Largest horizontal ball speed, px/step (0: straight down, as the book)."""
    walls: str = "clamp"
    """``clamp`` (default) or ``book`` (the trained game's bounce)."""
    spawn: str = "visible"
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


@dataclass
class AgentConfig:
    """The deep Q-network and how it learns."""

    network: str = "small"
    """Q-network: ``book`` (the book's CNN, 3,356,835 params), ``small`` CNN, ``mlp`` (state)."""
    dueling: bool = False
    """Dueling head (Wang et al. 2016)."""
    hidden: int = 128
    """Width of each of the ``mlp`` network's two hidden layers."""
    encoder: str = ""
    """A perception or imitation model (``.keras`` or its run directory, from ``catchrl
    supervised train``) whose pretrained conv encoder starts the Q-network; "" = none."""
    encoder_trainable: bool = True
    """Fine-tune the pretrained encoder (True) or freeze it so only the head learns."""
    perception: str = ""
    """A perception model (``.keras`` or its run directory, ``catchrl supervised train
    perception``): the agent plays the pixel game from the state it perceives, with the
    ``mlp`` network; "" = none."""
    aux_landing: float = 0.0
    """Weight of the auxiliary loss on a ``landing_x`` head (where the ball will land,
    labels free from the simulator, stored in replay); 0 = no head."""
    gamma: float = 0.99
    """Discount (book: 0.99)."""
    lr: float = 1e-3
    """Adam learning rate (book: 1e-6; measured: 1e-3 reached 99 % on pixels in 19k
    steps, 5e-4 in 25k+)."""
    loss: str = "huber"
    """``huber`` or ``mse`` (book: mse)."""
    double: bool = True
    """Double DQN targets (van Hasselt et al. 2016)."""
    target_update: str = "hard"
    """``hard`` copy every ``target_period`` steps, ``polyak``, or ``none`` (book)."""
    target_period: int = 200
    """Gradient steps between hard target copies (Nature DQN: 10k; Catch is short)."""
    tau: float = 0.005
    """Polyak rate when ``target_update = "polyak"``."""
    grad_clip_norm: float = 10.0
    """Global gradient-norm clip; 0 turns it off."""
    n_step: int = 5
    """n-step returns (1: plain one-step TD, the book). The only reward comes on a
    game's 33rd step; 5-step returns carry it back 5x faster per target copy."""
    batch_size: int = 64
    """Minibatch size (book: 32)."""
    train_every: int = 1
    """Vector-env steps between training rounds (book: 1)."""
    gradient_steps: int = 1
    """Gradient steps per training round."""
    replay_capacity: int = 50_000
    """Transitions kept in replay memory (book: 50,000)."""
    prioritized: bool = False
    """Prioritized replay (Schaul et al. 2016)."""
    epsilon: str = "linear"
    """ε schedule: ``linear`` / ``exponential`` over env steps, or ``book`` (per game)."""
    epsilon_start: float = 1.0
    """ε after the observe phase (book: 0.1)."""
    epsilon_end: float = 0.01
    """Final ε (book: 0.0001)."""
    epsilon_duration: int = 10_000
    """Env steps (linear/exponential) or games (book) over which ε decays."""
    observe: int = 2_000
    """Random-play env steps (games for the ``book`` schedule) before learning (book: 100
    games)."""


@dataclass
class RunConfig:
    """How long to train, how often to save and evaluate."""

    seed: int = 0
    """Seeds the env, the agent, the replay memory and the network initialisation."""
    total_steps: int = 50_000
    """Stop after this many env steps (transitions), or ``total_games``, whichever is first."""
    total_games: int = 0
    """Stop after this many games (0: no limit by games)."""
    time_limit_s: float = 0.0
    """Stop after this many seconds of training (0: no time limit)."""
    checkpoint_every: int = 200
    """Games between checkpoints (book: a model every 100 games)."""
    eval_every: int = 192
    """Games between greedy evaluations during training (0: off)."""
    eval_games: int = 1000
    """Games per evaluation (during training and at the end); 0 turns evaluation off."""
    target_win_rate: float = 0.99
    """Stop early once an evaluation reaches this greedy win rate (0: never)."""
    backend: str = "tensorflow"
    """Keras backend: ``tensorflow``, ``jax`` or ``torch``."""


@dataclass
class TrainConfig:
    """A whole training run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    run: RunConfig = field(default_factory=RunConfig)
    preset: str = "fast"
    """The preset this config started from."""
    algo: str = "dqn"
    """``dqn`` (the Keras DQN, uses ``[agent]``) or ``sb3-dqn``, ``sb3-ppo``... (``[sb3]``)."""
    sb3: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the SB3 algorithm, on top of catchrl's per-algorithm
    defaults; checked against the algorithm's signature by :mod:`catchrl.agents.sb3`."""


# Presets: changes from the dataclass defaults. The defaults are the fast pixel preset.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {},
    "fast-state": {
        # Measured (tests/agents/test_dqn.py's learning test): >= 95 % in < 50k steps.
        "env": {"obs_type": "state", "num_envs": 16},
        "agent": {
            "network": "mlp",
            "hidden": 128,
            "lr": 1e-3,
            "n_step": 3,
            "target_period": 300,
            "batch_size": 128,
            "observe": 1_000,
            "epsilon_end": 0.05,
            "epsilon_duration": 24_000,
        },
        "run": {"total_steps": 50_000, "eval_every": 320},
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
_CHOICES = {
    ("env", "obs_type"): ("pixels", "state", "grid"),
    ("env", "walls"): ("clamp", "book"),
    ("env", "spawn"): ("visible", "book"),
    ("agent", "network"): ("book", "small", "mlp"),
    ("agent", "loss"): ("huber", "mse"),
    ("agent", "target_update"): ("hard", "polyak", "none"),
    ("agent", "epsilon"): ("linear", "exponential", "book"),
    ("run", "backend"): ("tensorflow", "jax", "torch"),
}


def _field_types(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(table: str, key: str, value: Any, typ: type) -> Any:
    """Check one value's type (ints are accepted for floats); raise ConfigError if wrong."""
    name = f"{table}.{key}"
    if isinstance(typ, types.UnionType):  # not used yet; keep the check honest
        raise ConfigError(f"{name}: unsupported type {typ}")
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
    choices = _CHOICES.get((table, key))
    if choices and value not in choices:
        raise ConfigError(f"{name}: must be one of {choices}, got {value!r}")
    if typ in (int, float) and value < 0:
        raise ConfigError(f"{name}: must be >= 0, got {value!r}")
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
        if table == "sb3":
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [sb3] must be a table, got {values!r}")
            cfg.sb3.update(values)  # keys are checked against the SB3 algorithm later
            continue
        if table not in _TABLES:
            raise ConfigError(f"{source}: unknown table [{table}]; tables are {[*_TABLES, 'sb3']}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{table}] must be a table, got {values!r}")
        sub = getattr(cfg, table)
        fields = _field_types(type(sub))
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(
                    f"{source}: unknown key {table}.{key}; valid keys of "
                    f"[{table}]: {', '.join(fields)}"
                )
            setattr(sub, key, _coerce(table, key, value, fields[key]))


def _validate(cfg: TrainConfig) -> None:
    positive = [
        ("env", "num_envs"),
        ("env", "frame_size"),
        ("env", "frame_stack"),
        ("env", "balls_per_game"),
        ("agent", "batch_size"),
        ("agent", "train_every"),
        ("agent", "gradient_steps"),
        ("agent", "replay_capacity"),
        ("agent", "n_step"),
        ("agent", "lr"),
        ("agent", "target_period"),
    ]
    for table, key in positive:
        if getattr(getattr(cfg, table), key) <= 0:
            raise ConfigError(f"{table}.{key}: must be > 0")
    if not 0.0 < cfg.agent.gamma <= 1.0:
        raise ConfigError(f"agent.gamma: must be in (0, 1], got {cfg.agent.gamma}")
    if cfg.run.total_steps == 0 and cfg.run.total_games == 0 and cfg.run.time_limit_s == 0:
        raise ConfigError(
            "run.total_steps, run.total_games and run.time_limit_s are all 0: "
            "the run would never end"
        )
    if cfg.algo != "dqn":
        return  # the [agent] table is the Keras DQN's; SB3 settings are checked by SB3's module
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
    elif cfg.agent.network == "mlp" and cfg.env.obs_type == "pixels":
        raise ConfigError(
            "agent.network = 'mlp' needs env.obs_type 'state' or 'grid' (or agent.perception)"
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


def load_config(
    preset: str = "fast", path: str | Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Preset, then TOML file, then ``--set`` overrides; validated."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
        preset = data.get("preset", preset)
    cfg = make_config(preset)
    _update(cfg, data, str(path))
    return apply_overrides(cfg, overrides or [])


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The config as nested plain dicts."""
    return dataclasses.asdict(cfg)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a config saved with :func:`config_to_dict` (checked like a TOML file)."""
    cfg = TrainConfig(preset=str(data.get("preset", "fast")))
    _update(cfg, {k: v for k, v in data.items() if k in (*_TABLES, "algo", "sb3")}, "saved config")
    _validate(cfg)
    return cfg


def to_toml(cfg: TrainConfig) -> str:
    """The config as a TOML document (loadable with ``--config``)."""
    lines = [f'preset = "{cfg.preset}"', f'algo = "{cfg.algo}"']
    tables = {t: dataclasses.asdict(getattr(cfg, t)) for t in _TABLES}
    if cfg.sb3:
        tables["sb3"] = cfg.sb3
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
