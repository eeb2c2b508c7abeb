"""The Keras DQN as a learner of the run loop (:mod:`catchrl.runloop`).

Each step: ε-greedy actions on the batch of games, one vector-env step into the
replay memory, then ``agent.gradient_steps`` updates on sampled batches. The
loop may checkpoint before any step, mid-game included: the checkpoint holds
the games' state, the replay memory, the agent and the shift generator, so
``--resume`` is exact wherever the run stopped.

A frozen supervised model in front of the agent (``agent.perception``, or a
frozen ``agent.encoder``) turns frames into what the agent and its replay see;
a fine-tuned encoder starts the Q-network itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.config import ConfigError, TrainConfig
from catchrl.rundir import RunDir
from catchrl.runloop import StepLearner, StepReport

__all__ = ["DQNLearner"]


def _load_supervised_model(key: str, path: str, pick: Any = None) -> tuple[Any, Path]:
    """The ``.keras`` model (or a run directory's) that ``agent.<key>`` names, or a part of it.

    Raises:
        ConfigError: a missing file, or a model that cannot be loaded or picked from.

    """
    import keras

    import catchrl.supervised.layers  # noqa: F401  (registers the models' custom layers)

    model_path = Path(path) / "model.keras" if Path(path).is_dir() else Path(path)
    if not model_path.is_file():
        raise ConfigError(f"agent.{key}: {str(model_path)!r} does not exist")
    try:
        model = keras.saving.load_model(model_path, compile=False)
        return (pick(model) if pick else model), model_path
    except Exception as e:  # Keras raises many kinds for a bad file
        raise ConfigError(
            f"agent.{key}: {model_path} is not a usable model "
            f"({type(e).__name__}: {str(e).splitlines()[0][:160]})"
        ) from e


def _load_encoder(path: str, obs_shape: tuple[int, ...]) -> Any:
    """The pretrained encoder of ``agent.encoder``, checked against the game's frames."""
    from catchrl.supervised.perception import get_encoder

    encoder, model_path = _load_supervised_model("encoder", path, get_encoder)
    if tuple(encoder.input_shape[1:]) != tuple(obs_shape):
        raise ConfigError(
            f"agent.encoder: {model_path} reads frames of shape "
            f"{tuple(encoder.input_shape[1:])}, the game gives {tuple(obs_shape)}"
        )
    return encoder


def _frame_model_env(a: Any, env: Any) -> Any:
    """The env as the agent sees it through a frozen model (states, or encoder features).

    ``None`` when the agent reads the frames itself.
    """
    from catchrl.supervised.perception import FrameModelVectorWrapper, PerceptionVectorWrapper

    if a.encoder and not a.encoder_trainable:
        encoder = _load_encoder(a.encoder, env.single_observation_space.shape)
        return FrameModelVectorWrapper(env, encoder)
    if not a.perception:
        return None
    model, model_path = _load_supervised_model("perception", a.perception)
    try:
        return PerceptionVectorWrapper(env, model)
    except ValueError as e:
        raise ConfigError(f"agent.perception: {model_path}: {e}") from e


def _weights_sha256(model: Any) -> str:
    """A digest of a model's weights (what a checkpoint of the agent behind it relies on)."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


class DQNLearner(StepLearner):
    """catchrl's Keras DQN over the native vector env (``algo = "dqn"``).

    Args:
        cfg: The run's config.
        rd: The run directory.
        trust_pickle: Unused: the DQN's checkpoints hold no pickles.

    """

    algo = "dqn"
    model_name = "model.keras"

    def __init__(self, cfg: TrainConfig, rd: RunDir, trust_pickle: bool = False) -> None:
        super().__init__(cfg, rd, trust_pickle)
        import keras

        from catchrl.agents.dqn import DQNAgent
        from catchrl.agents.networks import build_q_network
        from catchrl.agents.replay import ReplayMemory
        from catchrl.agents.schedules import EpsilonSchedule
        from catchrl.envs import CatchVectorEnv

        c, a, seed = cfg, cfg.agent, cfg.run.seed
        keras.utils.set_random_seed(seed)
        # base_env: the games (checkpoints hold their state); env: what the agent sees.
        self.base_env = self.env = CatchVectorEnv(
            c.env.num_envs, autoreset_mode="same_step", **c.env.game_kwargs()
        )
        self.perception = _frame_model_env(a, self.base_env)
        self._frame_model_sha256 = None
        if self.perception is not None:
            self.env = self.perception
            self._frame_model_sha256 = _weights_sha256(self.perception.model)
        space = self.env.single_observation_space
        encoder = _load_encoder(a.encoder, space.shape) if a.encoder_trainable else None
        vectors = self.perception is not None or encoder is not None  # the MLP reads them
        kind = "mlp" if vectors else a.network
        self.model = build_q_network(
            kind,
            tuple(encoder.output_shape[1:]) if encoder is not None else space.shape,
            dueling=a.dueling,
            landing_head=a.aux_landing > 0,
            seed=seed,
            **({"hidden_units": (128, 128)} if kind == "mlp" else {}),
        )
        if encoder is not None:
            from catchrl.supervised.perception import build_q_network_from_encoder

            self.model = build_q_network_from_encoder(encoder, 3, trainable=True, head=self.model)
        self.agent = DQNAgent(self.model, a, seed=seed)
        frames = c.env.obs_type == "pixels" and self.perception is None
        self.memory = ReplayMemory(
            a.replay_capacity,
            c.env.num_envs,
            space.shape,
            space.dtype,
            frame_stack=c.env.frame_stack if frames else 1,
            n_step=a.n_step,
            prioritized=a.prioritized,
            seed=seed + 1,
            aux_dim=1 if a.aux_landing > 0 else 0,
        )
        # shifts: the generator of the random shifts of replayed frames (agent.augment_shift).
        self.shifts = np.random.default_rng(seed + 2) if frames and a.augment_shift else None
        self.schedule = EpsilonSchedule(
            a.epsilon, None, a.epsilon_end, a.epsilon_duration, a.observe
        )
        self.obs, _ = self.env.reset(seed=seed)
        self._learning = False

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The vector env's buffers, the evaluation env's and the replay memory's."""
        from catchrl.agents.replay import ReplayMemory
        from catchrl.envs import estimate_env_bytes

        c, a = cfg.env, cfg.agent
        space = c.observation_space()
        shape, dtype = space.shape, space.dtype
        frozen = bool(a.encoder) and not a.encoder_trainable
        frames = c.obs_type == "pixels" and not (a.perception or frozen)
        if a.perception or frozen:  # a state (at most 8 values), or the encoder's features
            size = int(_load_encoder(a.encoder, shape).output_shape[-1]) if frozen else 8
            shape, dtype = (size,), np.dtype(np.float32)
        kwargs = c.game_kwargs()
        env = estimate_env_bytes(c.num_envs, **kwargs) + estimate_env_bytes(250, **kwargs)
        return env + ReplayMemory.estimate_bytes(
            a.replay_capacity,
            c.num_envs,
            shape,
            dtype,
            frame_stack=c.frame_stack if frames else 1,
            prioritized=a.prioritized,
            aux_dim=1 if a.aux_landing > 0 else 0,
        )

    # -- one step --------------------------------------------------------------------------

    def step(self, steps: int, games: int) -> StepReport:
        """ε-greedy actions on the batch, one env step into replay, then the updates."""
        from catchrl.agents.augment import random_shift
        from catchrl.agents.scripted import landing_labels

        a = self.cfg.agent
        eps = self.schedule(steps, games)
        actions = self.agent.act(self.obs, eps)
        aux = None
        if self.memory.aux_dim:  # where each game's ball will land, / width: [N, 1]
            aux = landing_labels(self.base_env.params, self.base_env.batch)[:, None]
        next_obs, reward, terminated, truncated, _ = self.env.step(actions)
        self.memory.add(self.obs, actions, reward, terminated, truncated, aux=aux)
        self.obs = next_obs
        steps += len(reward)
        if not self._learning:
            observed = games if a.epsilon == "book" else steps
            self._learning = observed >= a.observe and self.memory.num_sampleable > 0
            if not self._learning:
                return StepReport(reward, terminated | truncated, eps, None)
        progress = steps / self.cfg.run.total_steps if self.cfg.run.total_steps else 0.0
        losses = []
        for _ in range(a.gradient_steps):
            batch = self.memory.sample(a.batch_size, progress)
            if self.shifts is not None:  # DrQ: the observations shifted, the targets not
                batch["obs"] = random_shift(batch["obs"], a.augment_shift, self.shifts)
            out = self.agent.train_step(batch, progress)
            self.memory.update_priorities(batch["indices"], out["td_errors"])
            losses.append(out["loss"])
        return StepReport(reward, terminated | truncated, eps, float(np.mean(losses)))

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The agent's greedy action for each observation (the evaluation policy)."""
        if self.perception is not None:
            obs = self.perception.perceive(obs)
        return self.agent.greedy(obs)

    # -- state -----------------------------------------------------------------------------

    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """Agent, replay memory and games (mid-game included)."""
        env_state = self.base_env.get_state()
        agent_arrays, agent_meta = self.agent.get_state()
        arrays = {"agent": agent_arrays, "replay": self.memory.state_dict()}
        arrays["env"] = env_state["arrays"]
        meta = {
            "agent": agent_meta,
            "env": env_state["meta"],
            "learning": self._learning,
            "frame_model_sha256": self._frame_model_sha256,
            "shifts_rng": self.shifts.bit_generator.state if self.shifts is not None else None,
        }
        return arrays, meta

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state`; the observations are those of the restored games.

        Raises:
            ValueError: the checkpoint does not fit this agent, or the frozen model in front
                of it has other weights than the run trained with.

        """
        if meta["frame_model_sha256"] != self._frame_model_sha256:
            a = self.cfg.agent
            raise ValueError(
                f"{a.perception or a.encoder} has other weights than when this run was "
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
        """Write the playing model in Keras format (frames in when the game is pixels).

        With a frozen model in front (``agent.perception`` or a frozen ``agent.encoder``)
        it is that model and the Q-network chained, so it reads frames like any other.
        """
        if self.perception is None:
            self.model.save(path)
            return
        from catchrl.supervised.perception import build_perceived_q_network

        build_perceived_q_network(
            self.perception.model, self.model, self.perception.single_observation_space
        ).save(path)

    def close(self) -> None:
        """Close the games."""
        self.env.close()
