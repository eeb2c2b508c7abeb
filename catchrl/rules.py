"""Rules across a config's fields: the game's bounds, n-step returns and replay that fit.

Also which supervised modules an agent can use. Each field's own type, choice
and range is checked where it is set (:mod:`catchrl.fields`); these need several
fields at once. Every broken rule is a ConfigError naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catchrl.fields import ConfigError


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


def validate(cfg: Any) -> None:
    """Check the rules across the fields of a ``TrainConfig``."""
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
    if a.lr_decay and cfg.run.total_steps == 0:
        raise ConfigError(
            "agent.lr_decay: the learning rate decays over run.total_steps, which is 0; "
            "set run.total_steps or agent.lr_decay=false"
        )
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


def _validate_modules(cfg: Any) -> None:
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
