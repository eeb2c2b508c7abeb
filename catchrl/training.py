"""The Keras DQN as a learner of the run loop (:mod:`catchrl.runloop`).

Data flow: config -> native vector env (N games, same-step autoreset) -> the
agent acts on the batch -> transitions into replay -> compiled train step on
sampled batches; the run loop writes one metrics row per game, evaluates,
checkpoints and stops.

The loop may checkpoint before any vector step, mid-game included: the
checkpoint holds the game's state (frame stacks too), the replay memory
(its per-game streams), the agent (weights, optimiser, target, RNG) and the
last observations, so ``--resume`` is exact wherever the run stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from catchrl.agents.augment import random_shift
from catchrl.agents.scripted import landing_labels
from catchrl.config import ConfigError, TrainConfig
from catchrl.rundir import RunDir
from catchrl.runloop import StepLearner, StepReport

__all__ = ["DQNLearner", "use_backend"]


def use_backend(name: str) -> None:
    """Select the Keras backend; must run before keras is first imported."""
    import sys

    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise RuntimeError(
                f"keras is already imported with the {keras.backend.backend()!r} "
                f"backend; start a new process to use {name!r}"
            )
        return
    os.environ["KERAS_BACKEND"] = name


def device_scope(device: str) -> contextlib.AbstractContextManager:
    """The Keras device scope for ``agent.device`` (``auto``: none, the backend decides).

    Raises:
        ConfigError: ``gpu`` and the running backend sees no GPU.

    """
    if device == "auto":
        return contextlib.nullcontext()
    import keras

    if device == "gpu" and _visible_gpus(keras.backend.backend()) == 0:
        raise ConfigError(
            f"agent.device = 'gpu', but the {keras.backend.backend()} backend sees no GPU "
            "(a CPU-only build, or no CUDA device): set agent.device to 'auto' or 'cpu'"
        )
    return keras.device("gpu:0" if device == "gpu" else "cpu:0")


def _visible_gpus(backend: str) -> int:
    """GPUs the Keras backend can use."""
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(d.platform == "gpu" for d in jax.devices())
    import torch

    return torch.cuda.device_count()


def _load_supervised_model(key: str, path: str, pick: Any = None) -> tuple[Any, Path]:
    """Load the ``.keras`` model (or a run directory's) that ``agent.<key>`` names.

    ``pick`` takes a part of it (e.g. the encoder); a missing file or a model
    that cannot be loaded or picked from is a :class:`ConfigError`.
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
    """What the agent sees instead of frames: perceived states, or frozen encoder features.

    ``None`` when it sees the frames (no perception model, no frozen encoder).
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


def _frame_pool(cfg: TrainConfig, space: Any) -> Any:
    """The :class:`~catchrl.agents.pooled.PooledFrames` of a run, or ``None``.

    A ``tiny`` network that reads the pixel frames itself (no perception model, no
    encoder) starts with a block mean: its replay memory keeps the frames summed.
    """
    from catchrl.agents.pooled import TINY_BLOCK, PooledFrames

    c, a = cfg.env, cfg.agent
    reads_frames = c.obs_type == "pixels" and not a.perception and not a.encoder
    if not reads_frames or a.network != "tiny" or space.dtype != np.uint8:
        return None
    return PooledFrames(TINY_BLOCK, a.augment_shift, space.shape[:2])


def _dqn_config(a: Any) -> Any:
    """The agent's settings from ``[agent]``: the fields of the same name, and two renamed.

    ``gamma`` and ``n_step`` are the replay memory's (it sums the returns), not the agent's.
    """
    from dataclasses import fields

    from catchrl.agents.dqn import DQNConfig

    same = {f.name for f in fields(DQNConfig)} & {f.name for f in fields(a)}
    kwargs = {name: getattr(a, name) for name in same}
    kwargs.update(grad_clip_norm=a.grad_clip_norm or None, aux_weight=a.aux_landing)
    return DQNConfig(**kwargs)


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
        use_backend(cfg.run.backend)
        import keras

        with device_scope(cfg.agent.device):  # the network's variables are made there
            self._build(keras, cfg.run.seed)

    def _build(self, keras: Any, seed: int) -> None:
        from catchrl.agents.dqn import DQNAgent
        from catchrl.agents.networks import block_mean_body, build_q_network
        from catchrl.agents.replay import ReplayMemory
        from catchrl.agents.schedules import EpsilonSchedule
        from catchrl.envs import CatchVectorEnv

        c, a = self.cfg, self.cfg.agent
        keras.utils.set_random_seed(seed)
        # base_env: the game (its state is what checkpoints hold); env: what the agent sees.
        self.base_env = self.env = CatchVectorEnv(
            c.env.num_envs, autoreset_mode="same_step", **c.env.game_kwargs()
        )
        # perception: the frozen model in front of the agent (agent.perception, or a frozen
        # agent.encoder), whose outputs the agent sees and the replay memory keeps.
        self.perception = _frame_model_env(a, self.base_env)
        self._frame_model_sha256 = None
        if self.perception is not None:
            self.env = self.perception
            self._frame_model_sha256 = _weights_sha256(self.perception.model)
        obs_space = self.env.single_observation_space
        # A fine-tuned encoder reads the frames in front of the MLP head a frozen one feeds.
        encoder = None
        if a.encoder and a.encoder_trainable:
            encoder = _load_encoder(a.encoder, obs_space.shape)
        # Behind a frozen model, or after a fine-tuned encoder, the agent reads vectors: the
        # MLP (two layers of agent.hidden), one head for the perception and encoder routes.
        vectors = self.perception is not None or encoder is not None
        kind = "mlp" if vectors else a.network
        model = build_q_network(
            kind,
            tuple(encoder.output_shape[1:]) if encoder is not None else obs_space.shape,
            3,
            dueling=a.dueling,
            landing_head=a.aux_landing > 0,
            seed=seed,
            **({"hidden_units": (a.hidden, a.hidden)} if kind == "mlp" else {}),
        )
        if encoder is not None:
            from catchrl.supervised.perception import build_q_network_from_encoder

            model = build_q_network_from_encoder(encoder, 3, trainable=True, head=model)
        frames = c.env.obs_type == "pixels" and self.perception is None
        # model: what the run saves and plays. pool: a network that starts with a block
        # mean (``tiny``) learns from frames summed once, as they enter the replay memory;
        # the agent then holds the rest of it (the same weights).
        self.model, self.pool = model, _frame_pool(c, obs_space)
        memory_shape, memory_dtype = obs_space.shape, obs_space.dtype
        if self.pool is not None:
            model = block_mean_body(model)[1]
            memory_shape = self.pool.stored_shape(obs_space.shape[-1])
            memory_dtype = self.pool.stored_dtype
        self.agent = DQNAgent(model, _dqn_config(a), seed=seed)
        self.memory = ReplayMemory(
            a.replay_capacity,
            c.env.num_envs,
            memory_shape,
            memory_dtype,
            frame_stack=c.env.frame_stack if frames else 1,
            n_step=a.n_step,
            gamma=a.gamma,
            prioritized=a.prioritized,
            seed=seed + 1,
            aux_dim=1 if a.aux_landing > 0 else 0,
        )
        # augment: the generator of the random shifts of replayed frames (agent.augment_shift).
        self.augment = np.random.default_rng(seed + 2) if frames and a.augment_shift > 0 else None
        self.schedule = EpsilonSchedule(
            a.epsilon, a.epsilon_start, a.epsilon_end, a.epsilon_duration, a.observe
        )
        # The batches drawn ahead (agent.prefetch) by a second thread, for the next round.
        self._prefetch = a.prefetch and not a.prioritized
        self._sampler: ThreadPoolExecutor | None = None
        self._drawn: list[dict[str, np.ndarray]] | None = None
        self.obs, _ = self.env.reset(seed=seed)
        self.vec_steps = self.grad_steps = 0
        self.settled = False
        self._learning_started = False

    @staticmethod
    def estimate_bytes(cfg: TrainConfig) -> int:
        """The vector env's buffers, the evaluation env's and the replay memory's."""
        from catchrl.agents.replay import ReplayMemory
        from catchrl.envs import estimate_env_bytes

        c, a = cfg.env, cfg.agent
        kwargs = c.game_kwargs()
        space = c.observation_space()
        shape, dtype = space.shape, space.dtype
        frozen = bool(a.encoder) and not a.encoder_trainable
        perceived = bool(a.perception) or frozen
        frames = c.obs_type == "pixels" and not perceived
        if perceived:  # a state (at most 8 values), or the encoder's features
            size = int(_load_encoder(a.encoder, shape).output_shape[-1]) if frozen else 8
            shape, dtype = (size,), np.dtype(np.float32)
        env = estimate_env_bytes(c.num_envs, **kwargs) + estimate_env_bytes(250, **kwargs)
        pool = _frame_pool(cfg, space)
        if pool is not None:
            shape, dtype = pool.stored_shape(shape[-1]), pool.stored_dtype
        if frames:
            shape = (*shape[:-1], 1)  # the memory keeps one frame a transition
        replay = ReplayMemory.estimate_bytes(
            a.replay_capacity,
            c.num_envs,
            shape,
            dtype,
            frame_stack=c.frame_stack if frames else 1,
            n_step=a.n_step,
            prioritized=a.prioritized,
            aux_dim=1 if a.aux_landing > 0 else 0,
        )
        return env + replay

    # -- one step --------------------------------------------------------------------

    def _learning(self, steps: int, games: int) -> bool:
        if self._learning_started:  # stays true: spare the memory scan on every step
            return True
        a = self.cfg.agent
        started = games >= a.observe if a.epsilon == "book" else steps >= a.observe
        self._learning_started = started and self.memory.num_sampleable >= a.batch_size
        return self._learning_started

    def _landing_labels(self) -> np.ndarray:
        """Where each game's ball will land, / width: ``[N, 1]`` (the auxiliary labels)."""
        return landing_labels(self.base_env.params, self.base_env.batch)[:, None]

    def step(self, steps: int, games: int) -> StepReport:
        """ε-greedy actions on the batch, one env step into replay, then the train steps."""
        a = self.cfg.agent
        eps = self.schedule(steps, games)
        if self.settled:
            eps = max(eps, a.settle_epsilon)
        kept = self._kept(self.obs)
        actions = self.agent.act(self._seen(kept), eps)
        aux = self._landing_labels() if self.memory.aux_dim else None
        next_obs, reward, terminated, truncated, _ = self.env.step(actions)
        self.memory.add(kept, actions, reward, terminated, truncated, aux=aux)
        self.obs = next_obs
        self.vec_steps += 1
        loss = None
        if self.vec_steps % a.train_every == 0 and self._learning(steps + len(reward), games):
            if a.prioritized:  # each batch drawn with the priorities the last step left
                outs = []
                for _ in range(a.gradient_steps):
                    batch = self._sample()
                    outs.append(self.agent.train_step(batch))
                    self.memory.update_priorities(batch["indices"], outs[-1]["td_errors"])
            elif self._prefetch:  # the steps of a round in one call, the next draw beside it
                batches = self._drawn or self._draw()
                self._sampler = self._sampler or ThreadPoolExecutor(1, "catchrl-replay")
                ahead = self._sampler.submit(self._draw)
                try:
                    outs = self.agent.train_steps_on(batches)
                finally:
                    self._drawn = ahead.result()
            else:
                outs = self.agent.train_steps_on(self._draw())
            self.grad_steps += len(outs)
            loss = sum(float(out["loss"]) for out in outs) / len(outs)
        return StepReport(reward, terminated | truncated, eps, loss)

    def _kept(self, obs: np.ndarray) -> np.ndarray:
        """Observations as the replay memory keeps them (summed, with a pool)."""
        return obs if self.pool is None else self.pool.store(obs)

    def _seen(self, kept: np.ndarray) -> np.ndarray:
        """Kept observations as the agent's network reads them (the block maps, with a pool)."""
        return kept if self.pool is None else self.pool.unshifted(kept)

    def _draw(self) -> list[dict[str, np.ndarray]]:
        """The batches of one training round (``agent.gradient_steps`` of them)."""
        return [self._sample() for _ in range(self.cfg.agent.gradient_steps)]

    def _sample(self) -> dict[str, np.ndarray]:
        """A replay batch as the agent's network reads it, the observations shifted (DrQ)."""
        a = self.cfg.agent
        batch = self.memory.sample(a.batch_size)
        if self.pool is not None:
            obs, rng = batch["obs"], self.augment
            batch["obs"] = self.pool.unshifted(obs) if rng is None else self.pool.shifted(obs, rng)
            batch["next_obs"] = self.pool.unshifted(batch["next_obs"])
        elif self.augment is not None:
            batch["obs"] = random_shift(batch["obs"], a.augment_shift, self.augment)
        return batch

    def after_evaluation(self, win_rate: float) -> str | None:
        """Settle learning once a validation evaluation reaches ``agent.settle_at``.

        The learning rate drops to ``agent.settle_lr`` for the rest of the run (a
        resumed run keeps it: the optimiser's state carries it); it is never raised,
        so a run whose ``lr`` is already lower keeps its own. With ``agent.settle_tau``
        the target network is set to the online one, then Polyak-averaged from then on
        (a resumed run switches again when it restores the settled state, its target
        as saved). From the next step ε is at least ``agent.settle_epsilon``.
        """
        a = self.cfg.agent
        changes = a.settle_lr or a.settle_epsilon or self._averages_when_settled()
        if not a.settle_at or not changes:
            return None
        if self.settled or win_rate < a.settle_at:
            return None
        self.settled = True
        old = self.agent.learning_rate
        new = min(old, a.settle_lr) if a.settle_lr else old
        self.agent.set_learning_rate(new)
        target = ""
        if self._averages_when_settled():
            self.agent.sync_target()  # the average starts from here, not from a stale copy
            self._settle_target()
            target = f", target: Polyak {a.settle_tau:g}"
        if a.settle_epsilon:
            target += f", epsilon >= {a.settle_epsilon:g}"
        reached = f"validation reached {100 * a.settle_at:g}%"
        return f"{reached}: learning settles (lr {old:g} -> {new:g}{target})"

    def _plays_average(self) -> bool:
        """Whether the target network (the online one's running average) plays and is saved."""
        a = self.cfg.agent
        return self.settled and a.settle_average and self._averages_when_settled()

    def _averages_when_settled(self) -> bool:
        """Whether settling switches the target to Polyak averaging (it needs a target)."""
        return bool(self.cfg.agent.settle_tau) and self.agent.target_model is not None

    def _settle_target(self) -> None:
        """Once settled, the target follows by Polyak averaging at ``agent.settle_tau``."""
        if self._averages_when_settled():
            self.agent.set_target_update("polyak", tau=self.cfg.agent.settle_tau)

    def run(self, loop: Any) -> None:
        """The run loop's steps, on ``agent.device``."""
        with device_scope(self.cfg.agent.device):
            super().run(loop)

    def greedy_policy(self, obs: np.ndarray, states: Any = None) -> np.ndarray:
        """The agent's greedy action for each observation (the evaluation policy).

        Once settled with ``agent.settle_average``, the target network's (the online
        network's running average).
        """
        with device_scope(self.cfg.agent.device):
            if self.perception is not None:
                obs = self.perception.perceive(obs)
            return self.agent.greedy(self._seen(self._kept(obs)), target=self._plays_average())

    # -- state -------------------------------------------------------------------------

    def get_state(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """Agent, replay memory and game state (mid-game included)."""
        env_state = self.base_env.get_state()
        arrays = {
            "agent": self.agent.get_state_arrays(),
            "replay": self.memory.state_dict(),
            "env": env_state["arrays"],
        }
        meta = {
            "agent": self.agent.get_state_meta(),
            "env": env_state["meta"],
            "vec_steps": self.vec_steps,
            "grad_steps": self.grad_steps,
            "settled": self.settled,
            "frame_model_sha256": self._frame_model_sha256,
        }
        if self.augment is not None:
            meta["augment_rng"] = self.augment.bit_generator.state
        if self._drawn is not None:  # drawn ahead: the next round trains on them
            arrays["drawn"] = {
                f"{i}/{key}": value
                for i, batch in enumerate(self._drawn)
                for key, value in batch.items()
            }
        return arrays, meta

    def set_state(self, arrays: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state`; the observations are those of the restored games.

        Raises:
            ValueError: the checkpoint does not fit this agent, or the frozen model in
                front of it (``agent.perception`` or a frozen ``agent.encoder``, which the
                checkpoint does not hold) has other weights than the run trained with.

        """
        saved = meta.get("frame_model_sha256")  # (absent in older checkpoints)
        if saved is not None and saved != self._frame_model_sha256:
            a = self.cfg.agent
            raise ValueError(
                f"{a.perception or a.encoder} has other weights than when this run was "
                "trained (its replay memory holds the old model's outputs); restore that file"
            )
        self.agent.set_state_arrays(arrays["agent"], meta["agent"])
        self.memory.load_state_dict(self._replay_state(arrays["replay"]))
        self.obs = self.base_env.set_state({"arrays": arrays["env"], "meta": meta["env"]})
        if self.perception is not None:
            self.obs = self.perception.perceive(self.obs)
        self.vec_steps, self.grad_steps = meta["vec_steps"], meta["grad_steps"]
        self.settled = bool(meta.get("settled", False))
        if self.settled:  # (the optimiser's state carries the settled learning rate)
            with device_scope(self.cfg.agent.device):
                self._settle_target()
        if self.augment is not None and "augment_rng" in meta:
            self.augment.bit_generator.state = meta["augment_rng"]
        self._drawn = None
        if self._prefetch and "drawn" in arrays:
            drawn: dict[int, dict[str, np.ndarray]] = {}
            for name, value in arrays["drawn"].items():
                i, key = name.split("/", 1)
                drawn.setdefault(int(i), {})[key] = np.asarray(value)
            self._drawn = [drawn[i] for i in sorted(drawn)]

    def _replay_state(self, state: Any) -> Any:
        """A replay memory's saved state, its frames pooled if it kept them whole.

        Checkpoints of ``tiny`` runs made before the memory kept the frames summed
        (:mod:`catchrl.agents.pooled`) hold the uint8 frames; they resume with those
        frames summed, which is what the memory would hold had it kept them so.
        """
        config = json.loads(str(state["config"]))
        raw = self.base_env.single_observation_space
        saved = [config.get("obs_shape"), config.get("obs_dtype")]
        whole = saved == [list(raw.shape), raw.dtype.str]
        if self.pool is None or not whole:
            return state  # (a mismatch of any other kind is the memory's error to raise)
        frames = np.asarray(state["frames"])  # [N, slots, H, W] (or [..., C] unstacked)
        n, slots = frames.shape[:2]
        pooled = self.pool.store(frames.reshape(n * slots, *raw.shape[:2], -1))
        shape = self.memory.obs_shape  # one frame of it is kept, or all of it unstacked
        kept = shape[:-1] if self.memory.frame_stack > 1 else shape
        config.update(obs_shape=list(shape), obs_dtype=self.memory.obs_dtype.str)
        return {
            **{key: state[key] for key in state},
            "frames": pooled.reshape(n, slots, *kept),
            "config": np.array(json.dumps(config)),
        }

    def save_model(self, path: Path) -> None:
        """Write the playing model in Keras format (frames in when the game is pixels).

        With ``agent.perception`` (or a frozen ``agent.encoder``) it is that model
        and the Q-network over its outputs chained, so it reads frames like any
        pixel Q-network. Once the run has settled with ``agent.settle_average``, its
        weights are the target network's (the online network's running average).
        """
        model = self.model if self.perception is None else self.agent.model
        if self._plays_average():  # the playing model with the averaged weights
            import keras

            average = keras.models.clone_model(model)
            average.set_weights(self.agent.target_model.get_weights())
            model = average
        if self.perception is None:
            model.save(path)
            return
        from catchrl.supervised.perception import build_perceived_q_network

        build_perceived_q_network(
            self.perception.model, model, self.perception.single_observation_space
        ).save(path)

    def close(self) -> None:
        """Close the game (and the thread that draws batches ahead)."""
        if self._sampler is not None:
            self._sampler.shutdown()
        self.env.close()
