"""Training configs: ``[env]``, ``[agent]`` and ``[run]`` tables, presets, TOML and ``--set``.

Each source overrides the last: the preset, a TOML file (``--config``), ``--set table.key=value``.
"measured": chosen by the runs of BENCHMARKS.md#the-main-job-dqn.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from catchrl import fields
from catchrl.envs import MAX_FRAME_SIZE, CatchVectorEnv, estimate_env_bytes
from catchrl.errors import did_you_mean
from catchrl.evaluation import EVAL_NUM_ENVS, MAX_EVAL_GAMES
from catchrl.fields import ConfigError, Range, check_game, parse_override, read_toml
from catchrl.fields import choices as choices  # re-exported for the commands

SEED_MAX = 2**32 - 1  # keras.utils.set_random_seed and numpy's legacy seeding
MAX_NUM_ENVS = 4096  # one pixel observation of 4,096 games is 105 MB
# 100 x the book's human game; tighter than the env's 10**9 so that one game ends (330k steps).
MAX_BALLS_PER_GAME = 10_000
FRAME_STACK = 4  # frames per pixel observation: the book's
FULL_FRAME_SIZE = 80  # the book's frames: SB3/RLlib and frame modules, unless set
NATURE_CNN_MIN_SIZE = 36  # SB3's NatureCNN: its three convolutions need frames of >= 36 px

RULES = {
    "standard": {"walls": "clamp", "spawn": "visible"},
    "book": {"walls": "book", "spawn": "book"},
}
"""The game's rules by name: the walls and spawn of :class:`catchrl.envs.CatchParams`."""


@dataclass
class EnvConfig:
    """The game the agent trains and is evaluated on."""

    obs_type: Literal["pixels", "state", "grid"] = "pixels"
    """``pixels`` (stacked frames, the book's), ``state`` or ``grid`` (bsuite's board)."""
    num_envs: Annotated[int, Range(1, MAX_NUM_ENVS)] = 16
    """Games played at once; a training round follows each vector step (measured)."""
    frame_size: Annotated[int, Range(2, MAX_FRAME_SIZE, why="the small CNN halves it")] = 20
    """Side of a pixel frame: ``tiny``'s input (book: 80; SB3, RLlib, frame modules: 80)."""
    balls_per_game: Annotated[int, Range(1, MAX_BALLS_PER_GAME)] = 1
    """Balls per game (book's trained game: 1)."""
    drift: Annotated[int, fields.COUNT] = 0
    """Largest sideways ball speed, px per step (book: 0, straight down)."""
    rules: Literal["standard", "book"] = "standard"
    """``book``: the book's bounce walls and spawn up to x = 400 (SEED_CATCH.md)."""

    def game_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``CatchEnv`` / ``CatchVectorEnv`` (besides num_envs)."""
        kw = {"obs_type": self.obs_type, "balls_per_game": self.balls_per_game, "drift": self.drift}
        kw |= RULES[self.rules]
        if self.obs_type == "pixels":
            kw |= {"frame_size": self.frame_size, "frame_stack": FRAME_STACK}
        return kw

    def observation_space(self) -> Any:
        """One observation's space, read from a one-game env (no step taken)."""
        env = CatchVectorEnv(1, **self.game_kwargs())
        env.close()
        return env.single_observation_space

    def games_bytes(self) -> int:
        """The buffers of the training games and of the evaluation's games."""
        kwargs = self.game_kwargs()
        return sum(estimate_env_bytes(n, **kwargs) for n in (self.num_envs, EVAL_NUM_ENVS))

    def steps_per_game(self) -> int:
        """Env steps in one game (33 a ball on the book's screen, 9 on bsuite's board)."""
        game = {"balls_per_game": self.balls_per_game, "drift": self.drift, **RULES[self.rules]}
        return check_game(self.obs_type, game).max_episode_steps


@dataclass
class AgentConfig:
    """The Keras DQN (``algo = "dqn"``): its network and how it learns."""

    network: Literal["book", "small", "tiny", "mlp"] = "tiny"
    """CNN ``book``, ``small`` or ``tiny`` for pixels, ``mlp`` for states (BENCHMARKS.md)."""
    dueling: bool = False
    """Dueling head (Wang et al. 2016)."""
    augment_shift: Annotated[int, Range(0, MAX_FRAME_SIZE - 1)] = 3
    """Replayed frames shifted sideways by up to this many frame px (DrQ; book: 0; measured)."""
    module: str = ""
    """Supervised module: perception:PATH, encoder:PATH, tuned-encoder:PATH or landing-head."""
    n_step: Annotated[int, Range(1, 100, why="three balls of the book's 33-step game")] = 16
    """n-step returns (book: 1; measured)."""
    lr: Annotated[float, Range(0.0, 1.0, low_open=True)] = 2e-3
    """Adam learning rate (book: 1e-6; measured)."""
    lr_decay: bool = True
    """Decay the learning rate linearly to 0 over ``run.total_steps`` (PureJaxRL's flag)."""
    loss: Literal["huber", "mse"] = "huber"
    """``huber`` (Nature DQN) or ``mse`` (book)."""
    target_every: Annotated[int, fields.COUNT] = 1
    """Gradient steps between target syncs; 0: no target network (book); measured."""
    tau: Annotated[float, Range(0.0, 1.0, low_open=True)] = 0.005
    """Each sync: target = tau * online + (1 - tau) * target; 1 is a copy (SB3's SAC; measured)."""
    grad_clip_norm: Annotated[float, fields.NON_NEGATIVE] = 10.0
    """Global gradient-norm clip (SB3's DQN: 10); 0 = off (book)."""
    batch_size: Annotated[int, Range(1, 65_536)] = 128
    """Minibatch size (book: 32; measured)."""
    gradient_steps: Annotated[int, fields.POSITIVE] = 4
    """Gradient steps per vector step (book: 1; measured)."""
    replay_capacity: Annotated[
        int, Range(1, 10_000_000, why="10 million 80 x 80 frames are 60 GiB")
    ] = 50_000
    """Transitions kept in replay memory (book: 50,000)."""
    prioritized: bool = False
    """Prioritized replay (Schaul et al. 2016), β annealed to 1 over the run."""
    epsilon: Literal["linear", "book"] = "linear"
    """ε from 1 to ``epsilon_end`` over env steps, or ``book`` (from 0.1, lowered per game)."""
    epsilon_end: Annotated[float, fields.FRACTION] = 0.1
    """Final ε (book: 0.0001; measured: enough moves past the catch's edges to learn them)."""
    epsilon_duration: Annotated[int, fields.COUNT] = 4_000
    """Env steps over which ε decays (measured); for ``book``: the run's games (book: 5,100)."""
    observe: Annotated[int, fields.COUNT] = 1_000
    """Random-play env steps (games for ``book``) before learning (book: 100 games; measured)."""

    def module_parts(self) -> tuple[str, str]:
        """``module`` split into its kind and path: ``("", "")`` for none."""
        kind, _, path = self.module.partition(":")
        return kind, path


@dataclass
class RunConfig:
    """How long to train and how often to evaluate and checkpoint."""

    seed: Annotated[int, Range(0, SEED_MAX, why="seeds are 32-bit for numpy and Keras")] = 0
    """Seeds the env, the agent, the replay memory and the network initialisation."""
    total_steps: Annotated[int, fields.POSITIVE] = 30_000
    """Env steps (transitions) to train for (measured)."""
    eval_every: Annotated[int, fields.COUNT] = 16
    """Games between validation evaluations and checkpoints; 0: none, one checkpoint at the end."""
    eval_games: Annotated[int, Range(0, MAX_EVAL_GAMES - 1)] = 1000
    """Games per evaluation (0: none); validation: each ball start once where it decides a game."""
    target_win_rate: Annotated[float, fields.FRACTION] = 1.0
    """Stop once a validation catches this share of its balls; 0: never (BENCHMARKS.md)."""


@dataclass
class TrainConfig:
    """A whole training run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The ``[env]`` table: the game."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """The ``[agent]`` table: the Keras DQN (unused by the SB3 and RLlib algorithms)."""
    run: RunConfig = field(default_factory=RunConfig)
    """The ``[run]`` table: budget, seed, evaluations."""
    preset: str = "fast"
    """The preset this config started from."""
    algo: str = "dqn"
    """``dqn`` (the Keras DQN, ``[agent]``), ``sb3-*`` (``[sb3]``) or ``rllib-*`` (``[rllib]``)."""
    sb3: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the SB3 algorithm, checked by :mod:`catchrl.agents.sb3`."""
    rllib: dict[str, Any] = field(default_factory=dict)
    """Settings of the RLlib algorithm, checked by :mod:`catchrl.agents.rllib_algos`."""


# Presets: changes from the dataclass defaults (measured).
# fmt: off
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {},
    "fast-state": {
        "env": {"obs_type": "state"},
        "agent": {"network": "mlp", "lr": 1e-3, "gradient_steps": 8, "epsilon_end": 0.05,
                  "epsilon_duration": 6_000, "lr_decay": False},
        "run": {"total_steps": 50_000, "eval_every": 32, "target_win_rate": 0.99},
    },
    "book": {  # the book's run as faithfully as Keras 3 allows (SEED_CATCH.md, "The training run")
        "env": {"obs_type": "pixels", "num_envs": 1, "rules": "book", "frame_size": 80},
        "agent": {"network": "book", "lr": 1e-6, "loss": "mse", "target_every": 0,
                  "grad_clip_norm": 0.0, "batch_size": 32, "gradient_steps": 1, "n_step": 1,
                  "epsilon": "book", "epsilon_end": 1e-4, "epsilon_duration": 5_100,  # its games
                  "observe": 100, "augment_shift": 0, "lr_decay": False},
        # 5,100 games of 33 steps; a model every 100 games.
        "run": {"total_steps": 168_300, "eval_every": 100, "eval_games": 100, "target_win_rate": 0},
    },
}
# fmt: on

_TABLES = {"env": EnvConfig, "agent": AgentConfig, "run": RunConfig}


def _update(cfg: TrainConfig, data: dict[str, Any], source: str) -> None:
    """Set the values of ``data``'s tables on ``cfg``, each checked."""
    known = [*_TABLES, "sb3", "rllib"]
    for table, values in data.items():
        if table == "algo":
            cfg.algo = fields.coerce(f"{source}: algo", values, str)
        elif table in ("preset", "sweep"):  # [sweep]: the study table of `catchrl sweep`
            continue
        elif table not in known:
            raise ConfigError(
                f"{source}: unknown table [{table}]; tables are {known}{did_you_mean(table, known)}"
            )
        elif not isinstance(values, dict):
            raise ConfigError(f"{source}: [{table}] must be a table, got {values!r}")
        elif table in ("sb3", "rllib"):
            getattr(cfg, table).update(values)  # keys are checked by the framework's module
        else:
            sub = getattr(cfg, table)
            hints = fields.field_hints(type(sub))
            for key, value in values.items():
                if key not in hints:
                    raise ConfigError(
                        f"{source}: unknown key {table}.{key}; valid keys of "
                        f"[{table}]: {', '.join(hints)}{did_you_mean(key, hints)}"
                    )
                setattr(sub, key, fields.coerce(f"{table}.{key}", value, hints[key]))


def preset_config(preset: str = "fast") -> TrainConfig:
    """The config of a named preset (see :data:`PRESETS`)."""
    if preset not in PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r}; presets are {list(PRESETS)}{did_you_mean(preset, PRESETS)}"
        )
    cfg = TrainConfig(preset=preset)
    _update(cfg, PRESETS[preset], f"preset {preset!r}")
    return cfg


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``table.key=value`` strings (from ``--set``) to ``cfg`` and validate."""
    for text in overrides:
        table, key, value = parse_override(text)
        _update(cfg, {table: {key: value}}, f"--set {text}")
    fields.validate(cfg)
    return cfg


def load_config(
    preset: str | TrainConfig = "fast",
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    algo: str | None = None,
) -> TrainConfig:
    """The preset (or the file's, or a copy of a config), the TOML file, ``--set``, ``algo``."""
    data = read_toml(path) if path is not None else {}
    if isinstance(preset, TrainConfig):
        cfg = copy.deepcopy(preset)
    else:
        cfg = preset_config(str(data.get("preset", preset)))
    _update(cfg, data, str(path))
    cfg.algo = algo or cfg.algo
    cfg = apply_overrides(cfg, overrides or [])
    # 80 px frames for SB3/RLlib and frame modules where env.frame_size is not the user's
    reads_frames = cfg.algo != "dqn" or cfg.agent.module_parts()[0] in fields.FRAME_MODULES
    pixels_at_default = cfg.env.obs_type == "pixels" and cfg.env.frame_size == EnvConfig.frame_size
    if reads_frames and pixels_at_default and not sets_frame_size(data, overrides or []):
        cfg.env.frame_size = FULL_FRAME_SIZE
    return cfg


def sets_frame_size(data: dict[str, Any], overrides: Sequence[str]) -> bool:
    """Whether a TOML file's ``data`` or ``--set`` strings give ``env.frame_size``."""
    given = [parse_override(text)[:2] for text in overrides]
    return "frame_size" in data.get("env", {}) or ("env", "frame_size") in given


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a config saved with ``dataclasses.asdict`` (checked like a TOML file)."""
    cfg = preset_config(str(data.get("preset", "fast")))
    _update(cfg, data, "saved config")
    fields.validate(cfg)
    return cfg


def to_toml(cfg: TrainConfig, leave_out: Collection[str] = ()) -> str:
    """The config as a TOML document (loadable with ``--config``), less ``leave_out``'s keys."""
    lines = [f"preset = {fields.toml_value(cfg.preset)}", f"algo = {fields.toml_value(cfg.algo)}"]
    tables = {t: dataclasses.asdict(getattr(cfg, t)) for t in _TABLES}
    tables |= {t: getattr(cfg, t) for t in ("sb3", "rllib") if getattr(cfg, t)}
    for table, values in tables.items():
        lines.append(f"\n[{table}]")
        kept = {k: v for k, v in values.items() if f"{table}.{k}" not in leave_out}
        lines += [f"{key} = {fields.toml_value(value)}" for key, value in kept.items()]
    return "\n".join(lines) + "\n"
