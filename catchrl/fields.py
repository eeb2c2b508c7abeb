"""What a config accepts: each field's annotation, and the rules across fields."""

from __future__ import annotations

import functools
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tomllib

from catchrl.errors import CatchrlError


class ConfigError(CatchrlError, ValueError):
    """A config key, value, preset or file is invalid; the message says which."""


INT_MAX = 2**63 - 1  # counters and checkpoints hold int64


@dataclass(frozen=True)
class Range:
    """The finite values ``low <= value <= high`` (``low < value`` with ``low_open``)."""

    low: float
    high: float
    low_open: bool = False
    why: str = ""  # where a bound comes from, said in the error

    def check(self, name: str, value: float) -> None:
        """Raise :class:`ConfigError` naming ``name`` unless ``value`` is in range."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number, got {value!r}")
        above = value > self.low if self.low_open else value >= self.low
        if above and value <= self.high:
            return
        if not above and self.high in (INT_MAX, math.inf):  # no top: just ">= 0"
            bound = f"{'>' if self.low_open else '>='} {_number(self.low)}"
        else:
            bound = f"in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}]"
        why = f" ({self.why})" if self.why else ""
        raise ConfigError(f"{name}: must be {bound}{why}, got {value!r}")


def _number(value: float) -> str:
    for power in (32, 63):
        if value == 2**power - 1:
            return f"2**{power} - 1"
    return f"{value:g}" if isinstance(value, float) else str(value)


COUNT = Range(0, INT_MAX)  # 0 usually means "off"
POSITIVE = Range(1, INT_MAX)
FRACTION = Range(0.0, 1.0)
NON_NEGATIVE = Range(0.0, math.inf)


@functools.cache
def field_hints(cls: type) -> dict[str, Any]:
    """Each field's annotation (``Literal[...]``, ``Annotated[T, Range]``, or a plain type)."""
    return typing.get_type_hints(cls, include_extras=True)  # a config class has only fields


def choices(cls: type, name: str) -> tuple[Any, ...]:
    """The values a ``Literal`` field allows (``()`` for a free one)."""
    hint = field_hints(cls)[name]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def coerce(name: str, value: Any, hint: Any) -> Any:
    """Check one value against its field's annotation: type (an int is a float), choice, range."""
    bounds = None
    if typing.get_origin(hint) is Annotated:
        hint, bounds = typing.get_args(hint)[:2]
    options = typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
    typ = type(options[0]) if options else hint
    wanted = (int, float) if typ is float else typ  # an int is a float; a bool is no number
    if not isinstance(value, wanted) or (isinstance(value, bool) and typ is not bool):
        raise ConfigError(f"{name}: expected {typ.__name__}, got {type(value).__name__} {value!r}")
    value = float(value) if typ is float else value
    if options and value not in options:
        raise ConfigError(f"{name}: must be one of {options}, got {value!r}")
    if bounds is not None:
        bounds.check(name, value)
    return value


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``table.key=value``; the value is read as TOML (so ``1e-4``, ``true``, ``"x"``)."""
    name, eq, raw = text.partition("=")
    if not eq or "." not in name:
        raise ConfigError(f"--set {text!r}: expected table.key=value, e.g. agent.lr=1e-4")
    table, key = name.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        value = raw.strip()  # a bare word (or nested too deep): take it as a string
    return table, key, value


def read_toml(path: str | Path) -> dict[str, Any]:
    """A config file's TOML tables; a :class:`ConfigError` if missing, not UTF-8 or not TOML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}): corrupt?") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    except RecursionError:  # tomllib recurses once per nesting level
        raise ConfigError(f"{path}: nested too deeply to be a config") from None


def toml_value(value: Any) -> str:
    """One TOML value: a bool, number, string, list or inline table (the one TOML writer)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # JSON's string escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


# -- rules across fields --------------------------------------------------------------

GAME_KEYS = ("drift", "balls_per_game", "walls", "spawn")
"""The game's keys besides ``obs_type``: ``[env]`` fields and the commands' options."""
FRAME_MODULES = ("perception", "encoder", "tuned-encoder")  # those that read frames
MODULES = (*FRAME_MODULES, "landing-head")
"""The supervised modules ``agent.module`` may name (docs/supervised_results.md)."""


def check_game(obs_type: str, game: Mapping[str, Any], drift_name: str = "env.drift") -> Any:
    """The game's ``CatchParams`` (``game``: any of :data:`GAME_KEYS`); ConfigError names drift."""
    from catchrl.envs.core import CatchParams

    make = CatchParams.bsuite if obs_type == "grid" else CatchParams
    geometry = make(**{k: v for k, v in game.items() if k != "drift"})
    drift, width = game.get("drift", 0), geometry.width - geometry.ball_size
    if not 0 <= drift <= width // 2:  # one step never crosses the world
        unit = "cells" if obs_type == "grid" else "px"
        raise ConfigError(
            f"{drift_name}: must be in [0, {width // 2}] for the {obs_type} game "
            f"(half the {width} {unit} the ball moves across), got {drift}"
        )
    return make(**game)


def validate(cfg: Any) -> None:
    """Check the rules across the fields of a ``TrainConfig``."""
    env, a, kwargs = cfg.env, cfg.agent, cfg.env.game_kwargs()
    params = check_game(env.obs_type, {k: v for k, v in kwargs.items() if k in GAME_KEYS})
    if cfg.algo != "dqn":
        return  # the [agent] table is the Keras DQN's; SB3 settings are checked by SB3's module
    (kind, path), pixels = a.module_parts(), env.obs_type == "pixels"
    reads_frames = kind in FRAME_MODULES
    if kind and kind not in MODULES:
        raise ConfigError(f"agent.module: must start with one of {MODULES}, got {kind!r}")
    if kind and (kind == "landing-head") == bool(path):
        form = "landing-head (no path)" if kind == "landing-head" else f"{kind}:PATH"
        raise ConfigError(f"agent.module: write it as {form}, got {a.module!r}")
    if reads_frames and not pixels:
        raise ConfigError(f"agent.module: {kind} reads frames; it needs env.obs_type 'pixels'")
    if kind == "perception" and a.network != "mlp":
        raise ConfigError(
            "agent.module: perception (the perceived state) needs agent.network 'mlp'"
        )
    if a.network == "mlp" and pixels and not reads_frames:
        raise ConfigError(
            "agent.network = 'mlp' needs env.obs_type 'state' or 'grid' "
            "(or agent.module perception:PATH or encoder:PATH)"
        )
    if a.network != "mlp" and not pixels:
        raise ConfigError(
            f"agent.network = {a.network!r} is a CNN for pixels; "
            f"use 'mlp' with env.obs_type {env.obs_type!r}"
        )
    one_game = f"the length of one {env.obs_type} game of {env.balls_per_game} ball(s)"
    Range(1, params.max_episode_steps, why=one_game).check("agent.n_step", a.n_step)
    if pixels:
        below = Range(0, env.frame_size - 1, why="below env.frame_size")
        below.check("agent.augment_shift", a.augment_shift)
    stack = kwargs.get("frame_stack", 1)
    slots = a.replay_capacity // env.num_envs
    if slots < a.n_step + stack:
        raise ConfigError(
            f"agent.replay_capacity: {a.replay_capacity} leaves {slots} step(s) per game for "
            f"{env.num_envs} games; agent.n_step + frame stack need {a.n_step + stack}: "
            f"raise it to >= {(a.n_step + stack) * env.num_envs}"
        )
    sampleable = env.num_envs * (slots - (stack - 1) - a.n_step)
    why = f"the most transitions a replay memory of {a.replay_capacity} can sample"
    Range(1, sampleable, why=why).check("agent.batch_size", a.batch_size)
