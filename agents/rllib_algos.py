"""RLlib algorithms on Catch (new API stack): names, defaults, checked options, config, state.

Ray is imported inside the functions that need it.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from catchrl.agents.rllib_env import make_env
from catchrl.agents.sb3 import check_options, import_algo


class RLlibNotInstalled(ImportError):
    """Ray's RLlib (or torch) is missing; the message says what to do."""


class RLlibConfigError(ValueError):
    """An ``[rllib]`` option or an algorithm name is invalid; the message says which."""


ALGOS: dict[str, tuple[str, str]] = {
    "rllib-ppo": ("ray.rllib.algorithms.ppo", "PPOConfig"),
    "rllib-dqn": ("ray.rllib.algorithms.dqn", "DQNConfig"),
    "rllib-appo": ("ray.rllib.algorithms.appo", "APPOConfig"),
}
"""``--algo`` name -> (module, RLlib ``AlgorithmConfig`` class)."""

OFF_POLICY = frozenset({"rllib-dqn"})
"""Algorithms with a replay buffer (saved in checkpoints) and ε-greedy exploration."""

ENV_NAME = "catchrl-catch"
"""The name the game is registered under with ``tune.register_env``."""

EXTRA_KEYS = ("model", "num_env_runners", "games_per_iteration")
"""``[rllib]`` keys that are not ``training()``'s: ``model`` (``DefaultModelConfig`` fields),
``num_env_runners`` (0: sample in the driver, fastest on a small machine; N: N EnvRunner
actors sharing ``env.num_envs``), ``games_per_iteration`` (games per env and iteration:
iterations end between games, so a checkpoint never cuts one)."""

_TOML = Path(__file__).with_name("rllib_defaults.toml").read_text(encoding="utf-8")
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = tomllib.loads(_TOML)
"""Each algorithm's defaults by observation kind ("pixels" or "vector"), with their sources;
``DEFAULTS["model"]``: the network of every algorithm."""


def algo_config_class(algo: str) -> type:
    """The RLlib ``AlgorithmConfig`` class of ``algo`` (imports Ray)."""
    return import_algo(ALGOS, algo, RLlibConfigError, RLlibNotInstalled, "rllib")


def rllib_options(
    algo: str, obs_type: str, user: dict[str, Any] | None, num_envs: int
) -> dict[str, Any]:
    """The ``[rllib]`` options of a run: catchrl's defaults updated by ``user``, checked.

    ``user``: ``training()`` arguments and :data:`EXTRA_KEYS`; RLlibConfigError names a key
    RLlib does not have (or ``model`` field), or ``num_envs`` the EnvRunners cannot share.
    """
    cls = algo_config_class(algo)
    kind = "pixels" if obs_type == "pixels" else "vector"
    opts = copy.deepcopy({**DEFAULTS[algo][kind], "model": DEFAULTS["model"][kind]})
    user = dict(user or {})
    if "model" in user:
        if not isinstance(user["model"], dict):
            raise RLlibConfigError(f"rllib.model must be a table, got {user['model']!r}")
        opts["model"] = {**opts["model"], **user.pop("model")}
    opts.update(user)
    allowed = {  # training() passes **kwargs up: every class's own arguments count
        name
        for base in cls.__mro__
        if "training" in vars(base)
        for name in inspect.signature(vars(base)["training"]).parameters
    } - {"self", "kwargs"}
    owner = f"{cls.__name__}.training() or {', '.join(EXTRA_KEYS)}"
    check_options("rllib", opts, allowed | set(EXTRA_KEYS), owner, RLlibConfigError)
    try:
        _model_config(opts)
    except TypeError as e:  # a field DefaultModelConfig does not have
        raise RLlibConfigError(f"rllib.model: {e}") from None
    for key, low in (("num_env_runners", 0), ("games_per_iteration", 1)):
        value = opts.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise RLlibConfigError(f"rllib.{key}: must be an int >= {low}, got {value!r}")
    runners = opts.get("num_env_runners", 0)
    if runners and num_envs % runners:
        raise RLlibConfigError(
            f"rllib.num_env_runners: {runners} EnvRunners cannot share env.num_envs="
            f"{num_envs} games equally"
        )
    return opts


def epsilon_at(options: dict[str, Any], steps: int) -> float:
    """DQN's ε after ``steps`` env steps (RLlib's piecewise-linear ``epsilon`` schedule)."""
    points = options["epsilon"]
    if isinstance(points, (int, float)):
        return float(points)
    ts, vs = np.asarray(points, dtype=np.float64).T  # [[t, ε], ...]
    return float(np.interp(steps, ts, vs))


def _model_config(options: dict[str, Any]) -> Any:
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return DefaultModelConfig(**options.get("model", {}))


def make_algo_config(
    algo: str,
    options: dict[str, Any],
    game: dict[str, Any],
    num_envs: int,
    seed: int,
    steps_per_game: int,
) -> Any:
    """The RLlib ``AlgorithmConfig`` for ``algo`` on ``num_envs`` games of ``game``, checked.

    ``options``: :func:`rllib_options`'s; ``seed``: RLlib's (the learner seeds the games);
    ``steps_per_game``: iterations end between games.
    """
    from ray import tune

    tune.register_env(ENV_NAME, make_env)
    runners = int(options.get("num_env_runners", 0))
    per_runner = num_envs // max(runners, 1)
    fragment = steps_per_game * int(options.get("games_per_iteration", 1))
    training = {k: v for k, v in options.items() if k not in EXTRA_KEYS}
    if algo == "rllib-ppo":
        training.setdefault("train_batch_size_per_learner", fragment * num_envs)
    cfg = (  # torch, RLlib's default framework
        algo_config_class(algo)()
        .environment(ENV_NAME, env_config={"game": dict(game)})
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=per_runner,
            gym_env_vectorize_mode="vector_entry_point",
            rollout_fragment_length=fragment,
        )
        .learners(num_learners=0)  # learn in this process (APPO's default is 1)
        .rl_module(model_config=_model_config(options))
        # one training_step() per iteration (APPO defaults to 10 s, DQN to 1,000 steps)
        .reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=0)
        .debugging(seed=seed, log_level="ERROR")
        .training(**training)
    )
    if algo == "rllib-appo" and runners == 0:
        cfg.env_runners(create_env_on_local_worker=True)
    return cfg


def module_spec(algo: str, options: dict[str, Any], obs_space: Any, action_space: Any) -> Any:
    """The (inference-only) RLModule spec of ``algo`` for these spaces, to build and load."""
    cfg = algo_config_class(algo)().rl_module(model_config=_model_config(options))
    if algo == "rllib-dqn":  # the settings that shape DQN's network
        cfg.training(**{k: options[k] for k in ("double_q", "dueling") if k in options})
    spaces = {"default_policy": (obs_space, action_space)}  # RLlib's one module's ID
    return cfg.get_rl_module_spec(spaces=spaces, inference_only=True)


def result_loss(result: dict[str, Any]) -> float | None:
    """The loss an ``Algorithm.train()`` result reports (None: none)."""
    learner = result.get("learners", {}).get("default_policy", {})
    for key in ("total_loss", "qf_loss", "policy_loss"):
        value = learner.get(key)
        if isinstance(value, (int, float, np.number)):
            return float(value)
    return None


def ensure_ray(num_cpus: int) -> None:
    """Start Ray locally, or join the cluster ``CATCHRL_RAY_ADDRESS`` names (once)."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("CATCHRL_RAY_ADDRESS") or "local"
    local = {"num_cpus": num_cpus} if address == "local" else {}
    ray.init(
        address, include_dashboard=False, log_to_driver=False, configure_logging=False, **local
    )


def _kl_coeffs(algo: Any) -> Any:
    """PPO's (and APPO's) current KL coefficients by module (None: no such learner)."""
    learner = getattr(algo.learner_group, "_learner", None)  # num_learners = 0
    return getattr(learner, "curr_kl_coeffs_per_module", None)


def get_algo_state(algo: Any) -> bytes:
    """An ``Algorithm``'s state (and DQN's replay) as msgpack bytes: no pickle, no code."""
    state: dict[str, Any] = {"algorithm": algo.get_state()}
    buffer = getattr(algo, "local_replay_buffer", None)
    if buffer is not None:
        state["replay"] = buffer.get_state()
    kl = _kl_coeffs(algo)
    if kl is not None:  # PPO's adaptive KL coefficient: not in RLlib's Learner state
        state["kl_coeffs"] = {k: float(v) for k, v in kl.items()}
    return _pack(state)


def set_algo_state(algo: Any, data: bytes) -> None:
    """Restore :func:`get_algo_state` (``ValueError`` if it does not fit this algorithm)."""
    state = _unpack(data)
    try:
        algo.set_state(state["algorithm"])
        if "replay" in state:
            algo.local_replay_buffer.set_state(state["replay"])
        kl = _kl_coeffs(algo)
        for module_id, value in state.get("kl_coeffs", {}).items():
            kl[module_id].data.fill_(value)
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"RLlib's state does not load: {type(e).__name__}: {e}") from e


_TENSOR, _ARRAY, _SCALAR, _TUPLE, _OBJECTS = range(1, 6)  # msgpack extension codes


def _pack(state: Any) -> bytes:
    """``state`` (dicts, lists, tuples, scalars, arrays, tensors) as msgpack (a Ray dependency)."""
    import msgpack
    import torch

    def pack(x: Any) -> bytes:
        return msgpack.packb(x, default=encode, strict_types=True)

    def encode(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return msgpack.ExtType(_TENSOR, encode(x.detach().cpu().numpy()).data)
        if isinstance(x, np.ndarray) and x.dtype == object:
            return msgpack.ExtType(_OBJECTS, pack([list(x.shape), x.ravel().tolist()]))
        if isinstance(x, (np.ndarray, np.generic)):
            code = _ARRAY if isinstance(x, np.ndarray) else _SCALAR
            return msgpack.ExtType(code, pack([x.dtype.str, list(x.shape), x.tobytes()]))
        if isinstance(x, tuple):
            return msgpack.ExtType(_TUPLE, pack(list(x)))
        if isinstance(x, dict):  # OrderedDict, defaultdict
            return dict(x)
        if isinstance(x, deque):
            return list(x)
        raise TypeError(f"RLlib's state holds a {type(x).__name__}: not stored")

    return pack(state)


def _unpack(data: bytes) -> Any:
    """Rebuild what :func:`_pack` stored."""
    import msgpack
    import torch

    def unpack(b: bytes) -> Any:
        return msgpack.unpackb(b, ext_hook=decode, strict_map_key=False)

    def decode(code: int, b: bytes) -> Any:
        if code == _TUPLE:
            return tuple(unpack(b))
        if code == _OBJECTS:
            shape, items = unpack(b)
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(shape)
        if code == _TENSOR:
            return torch.from_numpy(decode(_ARRAY, b))
        dtype, shape, raw = unpack(b)
        array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        return array[()] if code == _SCALAR else array

    return unpack(data)
