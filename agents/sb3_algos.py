"""Stable-Baselines3 algorithms on Catch: names, defaults, checked options, make and load.

- :data:`ALGOS` names the agents ``catchrl train --algo`` accepts (``sb3-dqn``,
  ``sb3-ppo``, ``sb3-a2c``, and sb3-contrib's ``sb3-qrdqn``).
- :func:`sb3_kwargs` merges catchrl's per-algorithm defaults (:data:`DEFAULTS`,
  each citing its source) with the user's ``[sb3]`` table and checks every key
  against the algorithm's constructor: a misspelt option is an error, never
  silently ignored.
- :func:`make_sb3_model` builds a model from those options;
  :func:`load_sb3_model` loads a saved one and :func:`detect_algo` reads which
  algorithm a saved ``.zip`` holds from its JSON metadata.

Pixel observations stay images: uint8 ``(80, 80, 4)`` channel-last, so SB3
picks ``CnnPolicy`` (NatureCNN) and wraps the env in ``VecTransposeImage``
itself. ``state`` and ``grid`` observations use ``MlpPolicy``.

Security: an SB3 ``.zip`` holds pickles; loading one runs code from the file.
catchrl loads only files the user names (see :mod:`catchrl.policies`).

Stable-Baselines3 is imported lazily, inside the functions that need it, so
importing this module costs nothing.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ALGOS",
    "DEFAULTS",
    "OFF_POLICY",
    "TARGET_PERIOD",
    "AlgoSpec",
    "SB3ConfigError",
    "SB3NotInstalled",
    "algorithm_class",
    "constructor_options",
    "detect_algo",
    "load_sb3_model",
    "make_sb3_model",
    "policy_name",
    "sb3_kwargs",
]


class SB3NotInstalled(ImportError):
    """Stable-Baselines3 (or sb3-contrib, for QR-DQN) is missing; the message says what to do."""


class SB3ConfigError(ValueError):
    """An ``[sb3]`` option or an algorithm name is invalid; the message says which."""


@dataclass(frozen=True)
class AlgoSpec:
    """Where an SB3 algorithm lives and what to install for it."""

    module: str
    cls: str
    install: str


ALGOS: dict[str, AlgoSpec] = {
    "sb3-dqn": AlgoSpec("stable_baselines3", "DQN", "pip install 'catchrl[sb3]'"),
    "sb3-ppo": AlgoSpec("stable_baselines3", "PPO", "pip install 'catchrl[sb3]'"),
    "sb3-a2c": AlgoSpec("stable_baselines3", "A2C", "pip install 'catchrl[sb3]'"),
    "sb3-qrdqn": AlgoSpec("sb3_contrib", "QRDQN", "pip install sb3-contrib"),
}
"""``--algo`` name -> SB3 class."""

OFF_POLICY = frozenset({"sb3-dqn", "sb3-qrdqn"})
"""Algorithms with a replay buffer (saved in checkpoints)."""

# Per-algorithm defaults for Catch, keyed by observation kind ("pixels" or "vector").
# Sources: RL Zoo's hyperparams (rl-baselines3-zoo/hyperparams/*.yml) for Atari
# (pixels) and CartPole-v1 (vector), adapted to a game whose episodes last 33
# steps and which is solved within ~10^5 transitions instead of 10^7:
# - replay buffers: RL Zoo Atari keeps 100k stacks; SB3 stores every
#   (80, 80, 4) stack twice (obs, next_obs), 51 KB a transition, so 100k would
#   take 5 GB. 20k with ``optimize_memory_usage`` (stored once: 0.5 GB) fits a
#   laptop; ``handle_timeout_termination`` must be off for that, which is exact
#   here because Catch never truncates.
# - learning_starts 1000 and ε from 1.0 to 0.01 over 20 % of the run.
# - train_freq 1 / gradient_steps 1: one gradient step per vector step of
#   ``env.num_envs`` games (RL Zoo Atari: 1 per 4 transitions).
# - target_update_interval: 250 gradient steps between target copies, as RL Zoo
#   Atari (1000 steps / train_freq 4). SB3 counts it in transitions, so
#   :func:`sb3_kwargs` converts.
# - vector obs: 4 gradient steps per vec step of 16 games, 1 per 4 transitions
#   (RL Zoo Atari's ratio; 1 per 16 learnt too slowly in 15k steps, measured).
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "sb3-dqn": {
        # Measured (docs/sb3.md, "Race results"): RL Zoo's Atari lr 1e-4 / batch 32 /
        # 1-step returns reached 96 % after 60k steps; catchrl's fast-preset learning
        # settings (lr 1e-3, batch 64, 5-step returns, learning_starts 2000) reached
        # 99.3 % after 31.7k. SB3's n-step buffer cannot use optimize_memory_usage,
        # so 20k stacks take 1 GB.
        "pixels": {
            "learning_rate": 1e-3,
            "buffer_size": 20_000,
            "learning_starts": 2_000,
            "batch_size": 64,
            "gamma": 0.99,
            "train_freq": 1,
            "gradient_steps": 1,
            "n_steps": 5,
            "exploration_fraction": 0.2,
            "exploration_initial_eps": 1.0,
            "exploration_final_eps": 0.01,
            "replay_buffer_kwargs": {"handle_timeout_termination": False},
        },
        # RL Zoo CartPole: lr 2.3e-3, batch 64, net [256, 256], eps 0.16 -> 0.04;
        # a smaller net is enough for a 3-number state.
        "vector": {
            "learning_rate": 1e-3,
            "buffer_size": 20_000,
            "learning_starts": 500,
            "batch_size": 64,
            "gamma": 0.99,
            "train_freq": 1,
            "gradient_steps": 4,
            "exploration_fraction": 0.2,
            "exploration_initial_eps": 1.0,
            "exploration_final_eps": 0.01,
            "policy_kwargs": {"net_arch": [64, 64]},
        },
    },
    "sb3-qrdqn": {
        # RL Zoo Atari QR-DQN: as its DQN, with 200 quantiles (sb3-contrib default).
        "pixels": {
            "learning_rate": 1e-4,
            "buffer_size": 20_000,
            "learning_starts": 1_000,
            "batch_size": 32,
            "gamma": 0.99,
            "train_freq": 1,
            "gradient_steps": 1,
            "exploration_fraction": 0.2,
            "exploration_final_eps": 0.01,
            "optimize_memory_usage": True,
            "replay_buffer_kwargs": {"handle_timeout_termination": False},
        },
        # RL Zoo CartPole QR-DQN: 10 quantiles.
        "vector": {
            "learning_rate": 1e-3,
            "buffer_size": 20_000,
            "learning_starts": 500,
            "batch_size": 64,
            "gamma": 0.99,
            "train_freq": 1,
            "gradient_steps": 4,
            "exploration_fraction": 0.2,
            "exploration_final_eps": 0.01,
            "policy_kwargs": {"net_arch": [64, 64], "n_quantiles": 10},
        },
    },
    "sb3-ppo": {
        # RL Zoo Atari PPO (8 envs): n_steps 128, 4 epochs, batch 256, lr 2.5e-4,
        # clip 0.1 (the Zoo anneals both linearly; constant here, TOML has no schedules),
        # vf_coef 0.5, ent_coef 0.01.
        "pixels": {
            "n_steps": 128,
            "n_epochs": 4,
            "batch_size": 256,
            "learning_rate": 2.5e-4,
            "clip_range": 0.1,
            "vf_coef": 0.5,
            "ent_coef": 0.01,
            "gamma": 0.99,
        },
        # RL Zoo CartPole PPO (8 envs): n_steps 32, batch 256, gae_lambda 0.8,
        # gamma 0.98, 20 epochs, lr 1e-3, clip 0.2.
        "vector": {
            "n_steps": 32,
            "n_epochs": 20,
            "batch_size": 256,
            "learning_rate": 1e-3,
            "clip_range": 0.2,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "ent_coef": 0.0,
        },
    },
    "sb3-a2c": {
        # RL Zoo Atari A2C: ent_coef 0.01, vf_coef 0.25 (its RMSpropTFLike optimizer
        # is not expressible in TOML; SB3's RMSprop default is used).
        "pixels": {"ent_coef": 0.01, "vf_coef": 0.25},
        # RL Zoo CartPole A2C: SB3 defaults with ent_coef 0.
        "vector": {"ent_coef": 0.0},
    },
}

TARGET_PERIOD = 250
"""Gradient steps between target-network copies for DQN / QR-DQN (RL Zoo Atari, catchrl)."""

# Constructor arguments catchrl sets itself; the message says where they come from.
_RESERVED = {
    "env": "the env comes from the [env] table",
    "seed": "use run.seed (or --seed)",
    "tensorboard_log": "TensorBoard events go to RUN/tb",
    "_init_setup_model": "internal to SB3",
}


def _obs_kind(obs_type: str) -> str:
    return "pixels" if obs_type == "pixels" else "vector"


def policy_name(obs_type: str) -> str:
    """``CnnPolicy`` (NatureCNN) for pixels, ``MlpPolicy`` for state and grid."""
    return "CnnPolicy" if obs_type == "pixels" else "MlpPolicy"


def _check_algo(algo: str) -> AlgoSpec:
    if algo not in ALGOS:
        raise SB3ConfigError(
            f"unknown algorithm {algo!r}; choose dqn (catchrl's) or one of {', '.join(ALGOS)}"
        )
    return ALGOS[algo]


def algorithm_class(algo: str) -> type:
    """The SB3 class of ``algo`` (e.g. ``stable_baselines3.DQN`` for ``sb3-dqn``).

    Raises:
        SB3ConfigError: ``algo`` is not one of :data:`ALGOS`.
        SB3NotInstalled: Its package cannot be imported.

    """
    spec = _check_algo(algo)
    try:
        module = importlib.import_module(spec.module)
    except ImportError as e:
        package = spec.module.replace("_", "-")
        if spec.module == "sb3_contrib":
            package = "sb3-contrib (QR-DQN lives there)"
        raise SB3NotInstalled(
            f"{algo} needs {package}, which cannot be imported "
            f"({type(e).__name__}: {e}); {spec.install}"
        ) from e
    return getattr(module, spec.cls)


def constructor_options(algo: str) -> list[str]:
    """The keyword arguments the algorithm's constructor accepts (minus reserved ones)."""
    params = inspect.signature(algorithm_class(algo).__init__).parameters
    return [
        n
        for n, p in params.items()
        if n not in ("self", *_RESERVED) and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]


def sb3_kwargs(
    algo: str, obs_type: str, user: dict[str, Any] | None = None, num_envs: int = 8
) -> dict[str, Any]:
    """The defaults for ``algo`` on ``obs_type``, updated with ``user``, checked.

    ``policy`` may be given to override :func:`policy_name`; ``policy_kwargs``
    and ``replay_buffer_kwargs`` tables are merged key by key with the defaults.
    ``num_envs`` turns :data:`TARGET_PERIOD` (gradient steps) into SB3's
    ``target_update_interval`` (transitions), unless that is given.

    Raises:
        SB3ConfigError: A key the algorithm does not take, or a reserved key.

    """
    user = dict(user or {})
    valid = [*constructor_options(algo)]
    for key in user:
        if key in _RESERVED:
            raise SB3ConfigError(f"sb3.{key} cannot be set: {_RESERVED[key]}")
        if key not in valid:
            close = [v for v in valid if key.lower() in v or v in key.lower()]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise SB3ConfigError(
                f"sb3.{key} is not an option of {ALGOS[algo].cls}{hint}; "
                f"valid options: {', '.join(sorted(valid))}"
            )
    merged: dict[str, Any] = {"policy": policy_name(obs_type)}
    merged.update(DEFAULTS[algo][_obs_kind(obs_type)])
    if algo in OFF_POLICY and "target_update_interval" not in user:
        freq = merged.get("train_freq", 4)
        freq = freq[0] if isinstance(freq, (list, tuple)) else freq
        per_grad_step = num_envs * int(freq) / max(1, int(merged.get("gradient_steps", 1)))
        merged["target_update_interval"] = max(1, round(TARGET_PERIOD * per_grad_step))
    for key, value in user.items():
        if (
            key.endswith("_kwargs")
            and isinstance(value, dict)
            and isinstance(merged.get(key), dict)
        ):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def make_sb3_model(
    algo: str, env: Any, kwargs: dict[str, Any], seed: int, device: str = "auto", verbose: int = 0
) -> Any:
    """Build the SB3 model from :func:`sb3_kwargs`'s output.

    Raises:
        SB3ConfigError: SB3 rejects a value (wrong type or range); one line.

    """
    cls = algorithm_class(algo)
    kw = copy.deepcopy(kwargs)  # SB3 (QR-DQN) adds classes to policy_kwargs in place
    if isinstance(kw.get("train_freq"), list):  # TOML has no tuples: [4, "step"]
        kw["train_freq"] = tuple(kw["train_freq"])
    policy = kw.pop("policy")
    try:
        return cls(policy, env, seed=seed, device=device, verbose=verbose, **kw)
    except (TypeError, ValueError, AssertionError, KeyError, NotImplementedError) as e:
        raise SB3ConfigError(
            f"{ALGOS[algo].cls} rejected the [sb3] settings "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e!r})"
        ) from e


# -- loading saved models ------------------------------------------------------------


def detect_algo(model_path: str | Path) -> str | None:
    """Guess the ``--algo`` of a saved SB3 ``.zip`` from its JSON metadata (no unpickling).

    Returns ``None`` when the file does not say (then the caller must know).
    """
    try:
        with zipfile.ZipFile(model_path) as z:
            data = json.loads(z.read("data").decode())
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError):
        return None
    module = str(data.get("policy_class", {}).get("__module__", ""))
    if module.startswith("stable_baselines3.dqn"):
        return "sb3-dqn"
    if module.startswith("sb3_contrib.qrdqn"):
        return "sb3-qrdqn"
    if module.startswith("stable_baselines3.common.policies"):
        return "sb3-ppo" if "n_epochs" in data else "sb3-a2c"  # both use ActorCriticPolicy
    return None


def load_sb3_model(
    model_path: str | Path | io.BytesIO, algo: str, env: Any = None, device: str = "cpu"
) -> Any:
    """Load a saved SB3 model (unpickles code: only for files the user named)."""
    cls = algorithm_class(algo)
    return cls.load(model_path, env=env, device=device)
