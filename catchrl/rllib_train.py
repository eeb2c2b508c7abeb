"""RLlib algorithms (new API stack) as learners of the run loop (:mod:`catchrl.runloop`).

RLlib keeps its own ``Algorithm.train()`` iterations. After each, the driver reports
every vector step the EnvRunners took (:class:`~catchrl.agents.rllib_env.RecordingVectorEnv`
records them) and asks the loop for a safe point. An iteration plays
``rllib.games_per_iteration`` whole games in every env, so a checkpoint needs no game
state: RLlib's own state (``Algorithm.get_state()``; DQN's replay buffer too) as plain
arrays and JSON (no pickle) and the driver's RNGs. With ``num_env_runners = 0`` (the
default) ``--resume`` continues exactly; remote EnvRunners keep RNGs of their own.
Ray starts locally (``address="local"``) unless ``CATCHRL_RAY_ADDRESS`` names a cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from catchrl.config import TrainConfig
from catchrl.errors import CheckpointError
from catchrl.rundir import RunDir
from catchrl.runloop import Learner, RunLoop, StepReport
from catchrl.sb3_train import rng_states, set_rng_states, set_torch_threads

__all__ = ["RLlibLearner", "flatten_state", "unflatten_state"]


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
    """An RLlib algorithm (``cfg.algo``: rllib-ppo, rllib-dqn, rllib-appo) on the native env.

    Args:
        cfg: The run's config with ``algo`` and the resolved ``[rllib]`` table.
        rd: The run directory.
        trust_pickle: Unused: RLlib checkpoints are stored without pickles.

    """

    algo: ClassVar[str] = "rllib"
    model_name = "model-rllib.npz"

    def __init__(self, cfg: TrainConfig, rd: RunDir, trust_pickle: bool = False) -> None:
        super().__init__(cfg, rd, trust_pickle)
        from catchrl.agents.rllib_algos import OFF_POLICY, make_algo_config, rllib_options

        self.options = rllib_options(cfg.algo, cfg.env.obs_type, cfg.rllib, cfg.env.num_envs)
        self.has_epsilon = cfg.algo in OFF_POLICY
        set_torch_threads()
        runners = int(self.options.get("num_env_runners", 0))
        _ensure_ray(num_cpus=max(1, runners) + 1)
        algo_cfg = make_algo_config(
            cfg.algo,
            self.options,
            cfg.env.game_kwargs(),
            cfg.env.num_envs,
            cfg.run.seed,
            cfg.env.steps_per_game(),
        )
        self.algo_rl = algo_cfg.build_algo()
        self.games_started = 0  # game count when the current games were seeded
        self.last_loss: float | None = None

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The games' buffers (training and evaluation) and DQN's replay (float32)."""
        from catchrl.envs import estimate_env_bytes

        game = cfg.env.game_kwargs()
        games = estimate_env_bytes(cfg.env.num_envs, **game) + estimate_env_bytes(250, **game)
        capacity = cfg.rllib.get("replay_buffer_config", {}).get("capacity", 0)
        return games + int(capacity) * int(np.prod(cfg.env.observation_space().shape)) * 4

    def _runners(self) -> Any:
        return self.algo_rl.env_runner_group

    def _remote(self) -> bool:
        return int(self.options.get("num_env_runners", 0)) > 0

    def _foreach(self, fn: Any) -> list[Any]:
        return self._runners().foreach_env_runner(fn, local_env_runner=not self._remote())

    def _start_games(self, games: int) -> None:
        """Seed fresh games for the next iteration (each runner its own range)."""
        from catchrl.agents.rllib_env import reset_runner

        per_runner = self.cfg.env.num_envs // max(1, int(self.options.get("num_env_runners", 0)))
        base = self.cfg.run.seed + games
        if self._remote():
            self._runners().foreach_env_runner(
                lambda r: reset_runner(r, base + (r.worker_index - 1) * per_runner),
                local_env_runner=False,
            )
        else:
            reset_runner(self.algo_rl.env_runner, base)
        self.games_started = games

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
            drained = self._foreach(drain_runner)
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
        arrays: dict[str, np.ndarray] = {}
        tree = flatten_state(state, arrays)
        meta = {"tree": tree, "rng": rng_states(), "games_started": self.games_started}
        return {"rllib": arrays}, meta

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (``ValueError`` if it does not fit this algorithm)."""
        state = unflatten_state(meta["tree"], arrays["rllib"])
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
        self.games_started = int(meta["games_started"])

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


# -- RLlib's state as arrays and JSON -------------------------------------------------


def flatten_state(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON tree of ``node`` (dicts, lists, tuples, scalars), its arrays moved to ``arrays``.

    Tensors and numpy arrays become entries ``a<i>`` of ``arrays``; dict keys keep
    their type (RLlib's optimiser states are keyed by int). Anything else is a
    :class:`~catchrl.errors.CheckpointError`: a checkpoint is never pickled.
    """
    import torch

    if isinstance(node, torch.Tensor):
        node = node.detach().cpu()
        key = f"a{len(arrays)}"
        arrays[key] = node.numpy()
        return {"t": key}
    if isinstance(node, np.ndarray):
        if node.dtype == object:
            return {"l": [flatten_state(v, arrays) for v in node.tolist()], "o": list(node.shape)}
        key = f"a{len(arrays)}"
        arrays[key] = node
        return {"n": key}
    if isinstance(node, np.generic):
        return {"s": node.item(), "d": str(node.dtype)}
    if node is None or isinstance(node, (bool, int, float, str)):
        if isinstance(node, float) and not np.isfinite(node):
            return {"f": repr(node)}
        return {"v": node}
    if isinstance(node, dict):
        items = []
        for k, v in node.items():
            if not isinstance(k, (str, int, bool)) and k is not None:
                k = str(k)
            items.append([k, type(k).__name__, flatten_state(v, arrays)])
        return {"d": items}
    if isinstance(node, (list, tuple)):
        return {"l" if isinstance(node, list) else "u": [flatten_state(v, arrays) for v in node]}
    if hasattr(node, "__iter__") and type(node).__name__ == "deque":
        return {"l": [flatten_state(v, arrays) for v in node]}
    raise CheckpointError(
        f"RLlib's state holds a {type(node).__name__}, which catchrl does not store"
    )


def unflatten_state(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Rebuild what :func:`flatten_state` stored."""
    import torch

    if "t" in tree:
        return torch.from_numpy(np.array(arrays[tree["t"]]))
    if "n" in tree:
        return np.array(arrays[tree["n"]])
    if "s" in tree:
        return np.array(tree["s"], dtype=tree["d"])[()]
    if "f" in tree:
        return float(tree["f"])
    if "v" in tree:
        return tree["v"]
    if "d" in tree:
        types = {"int": int, "bool": lambda s: s, "str": str, "NoneType": lambda s: s}
        return {types[t](k): unflatten_state(v, arrays) for k, t, v in tree["d"]}
    if "o" in tree:
        out = np.empty(len(tree["l"]), dtype=object)
        out[:] = [unflatten_state(v, arrays) for v in tree["l"]]
        return out.reshape(tree["o"])
    if "l" in tree:
        return [unflatten_state(v, arrays) for v in tree["l"]]
    if "u" in tree:
        return tuple(unflatten_state(v, arrays) for v in tree["u"])
    raise ValueError(f"bad state tree node {sorted(tree)}")
