"""RLlib algorithms (new API stack) as learners of the run loop, in ``Algorithm.train()``.

Each iteration plays whole games, reported step by step afterwards; a checkpoint is RLlib's
state in msgpack (no pickle) and the driver's RNGs: exact with ``num_env_runners = 0``.
Ray starts locally unless ``CATCHRL_RAY_ADDRESS`` names a cluster.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.config import TrainConfig
from catchrl.errors import CheckpointError
from catchrl.learners import Learner
from catchrl.rundir import RunDir
from catchrl.runloop import RunLoop, StepReport
from catchrl.sb3_train import rng_states, set_rng_states, set_torch_threads

__all__ = ["RLlibLearner", "pack_state", "unpack_state"]


def _ensure_ray(num_cpus: int) -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("CATCHRL_RAY_ADDRESS") or "local"
    local = {"num_cpus": num_cpus} if address == "local" else {}
    ray.init(
        address, include_dashboard=False, log_to_driver=False, configure_logging=False, **local
    )


class RLlibLearner(Learner):
    """An RLlib algorithm (``cfg.algo``, an ``rllib-*`` name of ``LEARNERS``) on the native env."""

    model_name = "model-rllib.npz"

    def __init__(self, cfg: TrainConfig, rd: RunDir, trust_pickle: bool = False) -> None:
        super().__init__(cfg, rd, trust_pickle)
        from catchrl.agents.rllib_algos import OFF_POLICY, make_algo_config, rllib_options

        self.options = rllib_options(cfg.algo, cfg.env.obs_type, cfg.rllib, cfg.env.num_envs)
        self.has_epsilon = cfg.algo in OFF_POLICY
        set_torch_threads()
        self.runners = int(self.options.get("num_env_runners", 0))  # 0: sample in this process
        _ensure_ray(num_cpus=max(1, self.runners) + 1)
        algo_cfg = make_algo_config(
            cfg.algo,
            self.options,
            cfg.env.game_kwargs(),
            cfg.env.num_envs,
            cfg.run.seed,
            cfg.env.steps_per_game(),
        )
        self.algo_rl = algo_cfg.build_algo()
        self.last_loss: float | None = None

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The games' buffers and DQN's replay (float32)."""
        capacity = cfg.rllib.get("replay_buffer_config", {}).get("capacity", 0)
        shape = cfg.env.observation_space().shape
        return cfg.env.games_bytes() + int(capacity) * int(np.prod(shape)) * 4

    def _start_games(self, games: int) -> None:
        """Seed fresh games for the next iteration (each EnvRunner its own seeds)."""
        from catchrl.agents.rllib_env import reset_runner

        seed = self.cfg.run.seed + games
        if not self.runners:
            reset_runner(self.algo_rl.env_runner, seed)
            return
        per_runner = self.cfg.env.num_envs // self.runners
        self.algo_rl.env_runner_group.foreach_env_runner(
            lambda r: reset_runner(r, seed + (r.worker_index - 1) * per_runner),
            local_env_runner=False,
        )

    def run(self, loop: RunLoop) -> None:
        """``Algorithm.train()`` until the loop says stop, reporting every step to ``loop``."""
        from catchrl.agents.rllib_algos import epsilon_at
        from catchrl.agents.rllib_env import drain_runner

        if loop.at_safe_point():
            return
        boundary = True
        while True:
            if boundary:
                self._start_games(loop.games)
            result = self.algo_rl.train()
            self.last_loss = _loss(result)
            drained = self.algo_rl.env_runner_group.foreach_env_runner(
                drain_runner, local_env_runner=not self.runners
            )
            rewards = np.concatenate([d[0] for d in drained], axis=1)
            ended = np.concatenate([d[1] for d in drained], axis=1)
            boundary = all(d[2] for d in drained)
            steps = loop.steps
            for t in range(len(rewards)):
                eps = epsilon_at(self.options, steps) if self.has_epsilon else 0.0
                loop.record_step(StepReport(rewards[t], ended[t], eps, self.last_loss))
                steps += len(rewards[t])
            if loop.at_safe_point():
                return

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The module's greedy action for each observation (the evaluation policy)."""
        from catchrl.agents.rllib_policy import greedy_actions

        return greedy_actions(self.algo_rl.get_module(), obs)

    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """RLlib's state (and DQN's replay) as arrays and JSON, and the driver's RNGs."""
        state: dict[str, Any] = {"algorithm": self.algo_rl.get_state()}
        buffer = getattr(self.algo_rl, "local_replay_buffer", None)
        if buffer is not None:
            state["replay"] = buffer.get_state()
        kl = self._kl_coeffs()
        if kl is not None:  # PPO's adaptive KL coefficient: not in RLlib's Learner state
            state["kl_coeffs"] = {k: float(v) for k, v in kl.items()}
        packed = np.frombuffer(pack_state(state), dtype=np.uint8)
        meta = {"rng": rng_states()}
        return {"rllib": {"state": packed}}, meta

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (``ValueError`` if it does not fit this algorithm)."""
        state = unpack_state(arrays["rllib"]["state"].tobytes())
        try:
            self.algo_rl.set_state(state["algorithm"])
            if "replay" in state:
                self.algo_rl.local_replay_buffer.set_state(state["replay"])
            kl = self._kl_coeffs()
            for module_id, value in state.get("kl_coeffs", {}).items():
                kl[module_id].data.fill_(value)
        except (RuntimeError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"RLlib's state does not load: {type(e).__name__}: {e}") from e
        set_rng_states(meta["rng"])

    def _kl_coeffs(self) -> Any:
        """PPO's (and APPO's) current KL coefficients by module (None: no such learner)."""
        learner = getattr(self.algo_rl.learner_group, "_learner", None)  # num_learners = 0
        return getattr(learner, "curr_kl_coeffs_per_module", None)

    def save_model(self, path: Path) -> None:
        """Write the playing module (load it with ``catchrl eval/watch``)."""
        from catchrl.agents.rllib_policy import save_rllib_module

        save_rllib_module(path, self.algo_rl.get_module(), self.cfg.algo, self.options)

    def close(self) -> None:
        """Stop the algorithm (its EnvRunners and learners)."""
        algo = getattr(self, "algo_rl", None)
        if algo is not None:
            algo.stop()
            self.algo_rl = None


def _loss(result: dict[str, Any]) -> float | None:
    learner = result.get("learners", {}).get("default_policy", {})
    for key in ("total_loss", "qf_loss", "policy_loss"):
        value = learner.get(key)
        if isinstance(value, (int, float, np.number)):
            return float(value)
    return None


# -- RLlib's state as msgpack (a Ray dependency): no pickle, nothing in it runs code ----------

_TENSOR, _ARRAY, _SCALAR, _TUPLE, _OBJECTS = range(1, 6)  # msgpack extension codes


def pack_state(state: Any) -> bytes:
    """``state`` (dicts, lists, tuples, scalars, arrays, tensors) as msgpack bytes."""
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
        raise CheckpointError(f"RLlib's state holds a {type(x).__name__}: not stored")

    return pack(state)


def unpack_state(data: bytes) -> Any:
    """Rebuild what :func:`pack_state` stored."""
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
