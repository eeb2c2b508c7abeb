"""Stable-Baselines3 on Catch: algorithms, defaults, a native ``VecEnv``, loading saved models.

- :data:`ALGOS` names the agents ``catchrl train --algo`` accepts (``sb3-dqn``,
  ``sb3-ppo``, ``sb3-a2c``, and sb3-contrib's ``sb3-qrdqn``).
- :func:`sb3_kwargs` merges catchrl's per-algorithm defaults (:data:`DEFAULTS`,
  each citing its source) with the user's ``[sb3]`` table and checks every key
  against the algorithm's constructor: a misspelt option is an error, never
  silently ignored.
- :class:`CatchSB3VecEnv` exposes the native :class:`~catchrl.envs.CatchVectorEnv`
  (same-step autoreset) as an SB3 ``VecEnv``: no subprocesses, no per-game
  Python objects, ``terminal_observation`` and ``episode`` in the infos as
  SB3's ``DummyVecEnv`` + ``Monitor`` would give them.
- :func:`load_sb3_policy` turns a saved ``.zip`` into a policy for the
  evaluation harness and ``catchrl watch``.

Pixel observations stay images: uint8 ``(80, 80, 4)`` channel-last, so SB3
picks ``CnnPolicy`` (NatureCNN) and wraps the env in ``VecTransposeImage``
itself. ``state`` and ``grid`` observations use ``MlpPolicy``.

Security: an SB3 ``.zip`` holds pickles; loading one runs code from the file.
catchrl loads only files the user names (see :mod:`catchrl.policies`).

Stable-Baselines3 and torch are imported lazily, inside the functions that
need them, so ``import catchrl.agents.sb3`` costs nothing.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import io
import json
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.envs import CatchVectorEnv

__all__ = [
    "ALGOS",
    "DEFAULTS",
    "OFF_POLICY",
    "TARGET_PERIOD",
    "AlgoSpec",
    "CatchSB3VecEnv",
    "SB3ConfigError",
    "SB3NotInstalled",
    "algorithm_class",
    "constructor_options",
    "detect_algo",
    "load_sb3_model",
    "load_sb3_policy",
    "make_catch_vec_env",
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
# - learning_starts 1000 and ε from 1.0 to 0.01 over 20 % of the run: catchrl's
#   ``fast`` preset (observe 1000 steps, ε over 10k of 50k steps).
# - train_freq 1 / gradient_steps 1: one gradient step per vector step of
#   ``env.num_envs`` games, the replay ratio of catchrl's DQN (RL Zoo Atari: 1 per 4).
# - target_update_interval: 250 gradient steps between target copies, as RL Zoo
#   Atari (1000 steps / train_freq 4) and catchrl's DQN (target_period 250). SB3
#   counts it in transitions, so :func:`sb3_kwargs` converts.
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


class CatchSB3VecEnv:
    """The native :class:`CatchVectorEnv` as a Stable-Baselines3 ``VecEnv``.

    Built by :func:`make_catch_vec_env` (which subclasses SB3's ``VecEnv``
    lazily, so this module imports without SB3). The games run with same-step
    autoreset: the step that ends game ``i`` returns the first observation of
    its next game, the last one in ``infos[i]["terminal_observation"]``, plus
    ``infos[i]["episode"] = {"r", "l", "t"}`` as SB3's ``Monitor`` writes it.
    Every info has ``TimeLimit.truncated`` as ``DummyVecEnv`` gives it (always
    ``False``: Catch never truncates).

    Args:
        num_envs: Games played at once.
        obs_type: ``pixels``, ``state`` or ``grid``.
        **game_kwargs: Other :class:`CatchVectorEnv` arguments (game parameters).

    """


def make_catch_vec_env(
    num_envs: int = 8, obs_type: str = "pixels", seed: int | None = None, **game_kwargs: Any
) -> Any:
    """A :class:`CatchSB3VecEnv` over ``num_envs`` native games (seeded at the first reset).

    Args:
        num_envs: Games played at once.
        obs_type: ``pixels``, ``state`` or ``grid``.
        seed: Game ``i`` of the first reset is seeded with ``seed + i``.
        **game_kwargs: Game parameters for :class:`CatchVectorEnv`.

    """
    env = _vec_env_class()(num_envs, obs_type, **game_kwargs)
    if seed is not None:
        env.seed(seed)
    return env


_VEC_ENV_CLASS: type | None = None


def _vec_env_class() -> type:
    """Define the ``VecEnv`` subclass on first use (SB3 imported only then)."""
    global _VEC_ENV_CLASS
    if _VEC_ENV_CLASS is not None:
        return _VEC_ENV_CLASS
    algorithm_class("sb3-dqn")  # a clear error if SB3 is missing
    from stable_baselines3.common.vec_env import VecEnv

    class _CatchSB3VecEnv(CatchSB3VecEnv, VecEnv):
        __doc__ = CatchSB3VecEnv.__doc__

        def __init__(self, num_envs: int, obs_type: str, **game_kwargs: Any) -> None:
            self.venv_native = CatchVectorEnv(
                num_envs, obs_type=obs_type, autoreset_mode="same_step", **game_kwargs
            )
            self.render_mode = None
            VecEnv.__init__(
                self,
                num_envs,
                self.venv_native.single_observation_space,
                self.venv_native.single_action_space,
            )
            self._actions = np.ones(num_envs, dtype=np.int64)
            self._returns = np.zeros(num_envs, dtype=np.float64)
            self._lengths = np.zeros(num_envs, dtype=np.int64)
            self._t0 = time.perf_counter()
            self._started = False

        def reset(self) -> np.ndarray:
            seeds = self._seeds
            if any(s is not None for s in seeds):
                obs, _ = self.venv_native.reset(seed=list(seeds))
            else:
                obs, _ = self.venv_native.reset()
            self._reset_seeds()
            self._reset_options()
            self._returns[:] = 0.0
            self._lengths[:] = 0
            self._started = True
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            obs, reward, terminated, truncated, info = self.venv_native.step(self._actions)
            dones = terminated | truncated
            self._returns += reward
            self._lengths += 1
            cut = truncated & ~terminated
            infos: list[dict[str, Any]] = [{"TimeLimit.truncated": bool(c)} for c in cut]
            if dones.any():
                final = info["final_obs"]
                t = round(time.perf_counter() - self._t0, 6)
                for i in np.flatnonzero(dones):
                    infos[i] = {
                        "terminal_observation": final[i],
                        "TimeLimit.truncated": bool(cut[i]),
                        "episode": {
                            "r": float(self._returns[i]),
                            "l": int(self._lengths[i]),
                            "t": t,
                        },
                    }
                self._returns[dones] = 0.0
                self._lengths[dones] = 0
            return obs, reward.astype(np.float32), dones, infos

        def close(self) -> None:
            self.venv_native.close()

        def _indices(self, indices: Any) -> Sequence[int]:
            if indices is None:
                return range(self.num_envs)
            return [indices] if isinstance(indices, int) else list(indices)

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            target = self if attr_name == "render_mode" else self.venv_native
            return [getattr(target, attr_name) for _ in self._indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(self.venv_native, attr_name, value)

        def env_method(
            self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
        ) -> list[Any]:
            result = getattr(self.venv_native, method_name)(*method_args, **method_kwargs)
            return [result for _ in self._indices(indices)]

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False for _ in self._indices(indices)]

        def get_images(self) -> Sequence[np.ndarray | None]:
            return [None for _ in range(self.num_envs)]

    _VEC_ENV_CLASS = _CatchSB3VecEnv
    return _VEC_ENV_CLASS


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


def load_sb3_policy(
    model_path: str | Path, env_kwargs: dict[str, Any], name: str, algo: str | None = None
) -> Any:
    """A saved SB3 model as a :class:`~catchrl.policies.LoadedPolicy`.

    The policy is greedy (``deterministic=True``); DQN and QR-DQN also expose
    ``q_values`` (QR-DQN: the mean over quantiles) for ``catchrl watch``.

    Args:
        model_path: The ``.zip`` the user named.
        env_kwargs: The game the policy will play (obs type and variants).
        name: Display name.
        algo: The run's ``--algo``; guessed from the file's metadata when ``None``.

    Raises:
        catchrl.policies.PolicyLoadError: Missing SB3, an unreadable file, or a model
            whose observation shape does not match the game.

    """
    from catchrl.envs import CatchEnv
    from catchrl.policies import LoadedPolicy, PolicyLoadError

    model_path = Path(model_path)
    algo = algo or detect_algo(model_path)
    if algo is None:
        raise PolicyLoadError(
            f"{model_path}: not a Stable-Baselines3 model file (no readable 'data' metadata)"
        )
    try:
        model = load_sb3_model(model_path, algo)
    except (SB3NotInstalled, SB3ConfigError) as e:
        raise PolicyLoadError(str(e)) from e
    except Exception as e:  # torch/pickle raise many kinds for a bad file
        raise PolicyLoadError(
            f"{model_path}: cannot be loaded as {algo} "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from e
    space = CatchEnv(**env_kwargs).observation_space
    shape = tuple(model.observation_space.shape)
    expected = tuple(space.shape)
    if shape != expected and shape != (expected[-1], *expected[:-1]):
        raise PolicyLoadError(
            f"{model_path}: the model takes observations of shape {shape}, "
            f"but the game gives {expected} (obs_type "
            f"{env_kwargs.get('obs_type', 'pixels')!r})"
        )
    return LoadedPolicy(name, _greedy_fn(model), env_kwargs, q_values=_q_values_fn(model, algo))


def _greedy_fn(model: Any) -> Any:
    def policy(obs: np.ndarray, states: Any = None) -> np.ndarray:
        actions, _ = model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64).reshape(len(obs))

    return policy


def _q_values_fn(model: Any, algo: str) -> Any:
    if algo not in OFF_POLICY:
        return None
    import torch

    def q_values(obs: np.ndarray) -> np.ndarray:
        tensor, _ = model.policy.obs_to_tensor(obs)
        with torch.no_grad():
            if algo == "sb3-qrdqn":
                q = model.policy.quantile_net(tensor).mean(dim=1)  # [N, Q, A] -> [N, A]
            else:
                q = model.policy.q_net(tensor)  # [N, A]
        return q.cpu().numpy()

    return q_values
