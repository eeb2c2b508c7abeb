"""The Keras DQN as a learner of the run loop (``agent.module`` too); exact resume, mid-game too."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.agents.augment import random_shift
from catchrl.agents.replay import ReplayMemory
from catchrl.agents.schedules import EpsilonSchedule
from catchrl.agents.scripted import landing_labels
from catchrl.config import ConfigError, TrainConfig
from catchrl.envs import CatchVectorEnv
from catchrl.runloop import Learner, RunLoop

MLP_UNITS = (128, 128)
"""The Q-network MLP's hidden layers (``agent.network = "mlp"``, fast-state's network)."""


def _replay_args(cfg: TrainConfig, space: Any, frames: bool) -> dict[str, Any]:
    """``ReplayMemory``'s arguments but the seed (``frames``: stacked frames, each kept once)."""
    a = cfg.agent
    return {
        "capacity": a.replay_capacity,
        "num_envs": cfg.env.num_envs,
        "obs_shape": space.shape,
        "obs_dtype": space.dtype,
        "frame_stack": space.shape[-1] if frames else 1,
        "n_step": a.n_step,
        "prioritized": a.prioritized,
        "aux_dim": 1 if a.module == "landing-head" else 0,
    }


class DQNLearner(Learner):
    """catchrl's Keras DQN over the native vector env (``algo = "dqn"``; no pickles)."""

    model_name = "model.keras"
    framework_bytes = 700 << 20  # TensorFlow + Keras: peak RSS 691 MiB, a fast run, replay 1,000
    memory_setting = "agent.replay_capacity"

    def __init__(self, cfg: TrainConfig, trust_pickle: bool = False) -> None:
        super().__init__(cfg, trust_pickle)
        import keras

        from catchrl.agents.dqn import DQNAgent
        from catchrl.agents.networks import build_q_network
        from catchrl.supervised import perception

        a, seed = cfg.agent, cfg.run.seed
        kind, path = a.module_parts()
        keras.utils.set_random_seed(seed)
        # base_env: the games (checkpoints hold their state); env: what the agent sees.
        self.base_env = self.env = CatchVectorEnv(
            cfg.env.num_envs, autoreset_mode="same_step", **cfg.env.game_kwargs()
        )
        # perception: the frozen model in front of the agent (perception or encoder).
        module, self.perception, self._frame_model_sha256 = None, None, None
        if path:
            try:
                module, self.perception = perception.frozen_module_env(kind, path, self.base_env)
            except ValueError as e:
                raise ConfigError(f"agent.module: {e}") from None
            except OSError as e:  # a name too long
                raise ConfigError(f"agent.module: {path[:60]!r}...: {e.strerror}") from None
        if self.perception is not None:
            self.env = self.perception
            weights = self.perception.model.get_weights()  # a resume checks they are the same
            digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights))
            self._frame_model_sha256 = digest.hexdigest()
        space = self.env.single_observation_space
        net = "mlp" if path else a.network  # the MLP reads states or features
        shape = tuple(module.output_shape[1:]) if kind == "tuned-encoder" else space.shape
        head = kind == "landing-head"
        self.model = build_q_network(
            net, shape, dueling=a.dueling, landing_head=head, seed=seed, hidden_units=MLP_UNITS
        )
        if kind == "tuned-encoder":
            self.model = perception.build_q_network_from_encoder(module, self.model)
        self.agent = DQNAgent(self.model, a, seed=seed)
        frames = cfg.env.obs_type == "pixels" and self.perception is None
        self.memory = ReplayMemory(**_replay_args(cfg, space, frames), seed=seed + 1)
        # shifts: the generator of the random shifts of replayed frames (agent.augment_shift).
        self.shifts = np.random.default_rng(seed + 2) if frames and a.augment_shift else None
        self.schedule = EpsilonSchedule(a.epsilon, a.epsilon_end, a.epsilon_duration, a.observe)
        self.obs, _ = self.env.reset(seed=seed)
        self._learning = False

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The games' and the replay memory's buffers (frames: an upper bound behind a module)."""
        args = _replay_args(cfg, cfg.env.observation_space(), cfg.env.obs_type == "pixels")
        return cfg.env.games_bytes() + ReplayMemory.estimate_bytes(**args)

    def run(self, loop: RunLoop) -> None:
        """Until ``loop`` says stop (at every vector step): act ε-greedily, step, store, learn."""
        a = self.cfg.agent
        while not loop.at_safe_point():
            eps = self.schedule(loop.steps, loop.games)
            actions = self.agent.act(self.obs, eps)
            aux = None
            if self.memory.aux_dim:  # where each game's ball will land, / width: [N, 1]
                aux = landing_labels(self.base_env.params, self.base_env.batch)[:, None]
            next_obs, reward, terminated, truncated, _ = self.env.step(actions)
            self.memory.add(self.obs, actions, reward, terminated, truncated, aux=aux)
            self.obs = next_obs
            steps, ended = loop.steps + len(reward), terminated | truncated
            if not self._learning:
                observed = loop.games if a.epsilon == "book" else steps
                self._learning = observed >= a.observe and self.memory.num_sampleable > 0
                if not self._learning:
                    loop.record_step(reward, ended, eps)
                    continue
            progress = steps / self.cfg.run.total_steps
            losses = []
            for _ in range(a.gradient_steps):
                batch = self.memory.sample(a.batch_size, progress)
                if self.shifts is not None:  # DrQ: the observations shifted, the targets not
                    batch["obs"] = random_shift(batch["obs"], a.augment_shift, self.shifts)
                out = self.agent.train_step(batch, progress)
                self.memory.update_priorities(batch["indices"], out["td_errors"])
                losses.append(out["loss"])
            loop.record_step(reward, ended, eps, float(np.mean(losses)), out["lr"])

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The agent's greedy action for each observation (the evaluation policy)."""
        if self.perception is not None:
            obs = self.perception.perceive(obs)
        return self.agent.greedy(obs)

    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """Agent, replay memory and games (mid-game included)."""
        env, (agent_arrays, agent_meta) = self.base_env.get_state(), self.agent.get_state()
        arrays = {"agent": agent_arrays, "replay": self.memory.state_dict(), "env": env["arrays"]}
        shifts = self.shifts.bit_generator.state if self.shifts is not None else None
        meta = {"agent": agent_meta, "env": env["meta"], "learning": self._learning}
        return arrays, meta | {"frame_model_sha256": self._frame_model_sha256, "shifts_rng": shifts}

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (ValueError: it does not fit, or the module changed)."""
        if meta["frame_model_sha256"] != self._frame_model_sha256:
            raise ValueError(
                f"{self.cfg.agent.module} has other weights than when this run was "
                "trained (its replay memory holds the old model's outputs); restore that file"
            )
        self.agent.set_state(arrays["agent"], meta["agent"])
        self.memory.load_state_dict(arrays["replay"])
        self.obs = self.base_env.set_state({"arrays": arrays["env"], "meta": meta["env"]})
        if self.perception is not None:
            self.obs = self.perception.perceive(self.obs)
        self._learning = bool(meta["learning"])
        if self.shifts is not None:
            self.shifts.bit_generator.state = meta["shifts_rng"]

    def save_model(self, path: Path) -> None:
        """Write the playing model in Keras format (a frozen module chained in front)."""
        model, p = self.model, self.perception
        if p is not None:
            from catchrl.supervised.perception import build_perceived_q_network

            model = build_perceived_q_network(p.model, model, p.single_observation_space)
        model.save(path)
