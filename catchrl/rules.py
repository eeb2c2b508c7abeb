"""Rules across a config's fields: the game's bounds, the module, n-step returns and replay.

Each field's own type, choice and range is checked where it is set
(:mod:`catchrl.fields`); these need several fields at once. Every broken rule is a
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catchrl.fields import ConfigError

GAME_KEYS = ("drift", "balls_per_game", "walls", "spawn")
MODULES = ("perception", "encoder", "tuned-encoder", "landing-head")
"""The supervised modules ``agent.module`` may name (docs/supervised_results.md)."""


def check_game(
    obs_type: str, game: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> Any:
    """The game's ``CatchParams``, or a :class:`ConfigError` naming the key it refuses.

    Args:
        obs_type: ``pixels``, ``state`` or ``grid`` (``grid`` plays bsuite's 10 x 5 board).
        game: ``drift``, ``balls_per_game``, ``walls``, ``spawn`` (any subset).
        names: How to name each key in a message (default ``env.KEY``; the CLI's options).

    """
    from catchrl.envs.core import CatchParams

    names = {k: f"env.{k}" for k in GAME_KEYS} | dict(names or {})
    make = CatchParams.bsuite if obs_type == "grid" else CatchParams
    try:
        geometry = make(**{k: v for k, v in game.items() if k != "drift"})
    except (TypeError, ValueError) as e:
        named = next((names.get(k, k) for k in game if k in str(e)), "the game")
        raise ConfigError(f"{named}: {e}") from None
    drift, width = game.get("drift", 0), geometry.width - geometry.ball_size
    if not 0 <= drift <= width // 2:  # one step never crosses the world
        unit = "cells" if obs_type == "grid" else "px"
        raise ConfigError(
            f"{names['drift']}: must be in [0, {width // 2}] for the {obs_type} game "
            f"(half the {width} {unit} the ball moves across), got {drift}"
        )
    return make(**game)


def validate(cfg: Any) -> None:
    """Check the rules across the fields of a ``TrainConfig``."""
    env, a = cfg.env, cfg.agent
    params = check_game(
        env.obs_type, {k: v for k, v in env.game_kwargs().items() if k in GAME_KEYS}
    )
    if cfg.algo != "dqn":
        return  # the [agent] table is the Keras DQN's; SB3 settings are checked by SB3's module
    _check_module(cfg)
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
    stack = env.game_kwargs().get("frame_stack", 1)
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


def _check_module(cfg: Any) -> None:
    """``agent.module`` against the game and the network."""
    kind, path = cfg.agent.module_parts()
    pixels, network = cfg.env.obs_type == "pixels", cfg.agent.network
    if kind and kind not in MODULES:
        raise ConfigError(f"agent.module: must start with one of {MODULES}, got {kind!r}")
    if kind and (kind == "landing-head") == bool(path):
        form = "landing-head (no path)" if kind == "landing-head" else f"{kind}:PATH"
        raise ConfigError(f"agent.module: write it as {form}, got {cfg.agent.module!r}")
    if kind in ("perception", "encoder", "tuned-encoder") and not pixels:
        raise ConfigError(f"agent.module: {kind} reads frames; it needs env.obs_type 'pixels'")
    if kind == "perception" and network != "mlp":
        raise ConfigError(
            "agent.module: perception (the perceived state) needs agent.network 'mlp'"
        )
    if network == "mlp" and pixels and kind not in ("perception", "encoder", "tuned-encoder"):
        raise ConfigError(
            "agent.network = 'mlp' needs env.obs_type 'state' or 'grid' "
            "(or agent.module perception:PATH or encoder:PATH)"
        )
    if network != "mlp" and not pixels:
        raise ConfigError(
            f"agent.network = {network!r} is a CNN for pixels; "
            f"use 'mlp' with env.obs_type {cfg.env.obs_type!r}"
        )
