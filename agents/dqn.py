"""Deep Q-learning: ``DQNConfig`` and ``DQNAgent`` (Mnih et al., 2015, and the book).

Reads top to bottom: the TD target and the loss as small pure functions
(``keras.ops``, any backend), then the agent that acts ε-greedily, takes one
compiled gradient step on a :meth:`ReplayMemory.sample
<catchrl.agents.replay.ReplayMemory.sample>` batch and keeps its target network
in sync. How a step is compiled (``tf.function``, ``jax.jit`` or torch autograd)
lives in :mod:`catchrl.agents._backend`.

The book's agent is ``DQNConfig(lr=1e-6, loss="mse", double=False,
target_update="none", grad_clip_norm=None)``: targets from the online network
itself, no clipping.

Determinism: on CPU, two agents built with the same network seed and agent
seed and fed the same batches hold bit-identical weights after any number of
steps (``tests/agents/test_dqn.py``), without
``tf.config.experimental.enable_op_determinism()``; enabling it cost nothing
measurable on the small CNN (CPU), so a caller wanting GPU determinism may
turn it on. It is a process-wide switch, so the agent leaves it to the caller.

Keras reads ``KERAS_BACKEND`` when first imported: set it before importing this
module (default: tensorflow).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, get_args

import keras
import numpy as np

from catchrl.agents import _backend
from catchrl.agents.networks import has_aux_output, load_q_network, q_output

__all__ = ["DQNAgent", "DQNConfig", "elementwise_loss", "td_targets"]

Optimizer = Literal["adam", "rmsprop", "sgd"]
Loss = Literal["huber", "mse"]
TargetUpdate = Literal["hard", "polyak", "none"]


@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of :class:`DQNAgent`.

    Attributes:
        lr: Learning rate (Nature DQN's 2.5e-4; the book's 1e-6 learns far slower).
        optimizer: ``"adam"`` (book), ``"rmsprop"`` (Nature DQN) or ``"sgd"``.
        loss: ``"huber"`` (Nature DQN's clipped TD error) or ``"mse"`` (book).
        huber_delta: Where the Huber loss turns linear (Nature DQN: 1).
        double: Double DQN (van Hasselt et al., 2016): the online network picks
            the next action, the target network values it. The book: off.
        target_update: ``"hard"`` (copy every ``target_period`` steps, Nature
            DQN), ``"polyak"`` (blend by ``tau`` each step) or ``"none"`` (the
            book: targets from the online network).
        target_period: Gradient steps between hard copies (measured on Catch:
            500 is plenty for 33-step games; Nature DQN: 10,000 on Atari).
        tau: Polyak rate per gradient step (0.005, SB3's default for SAC/TD3).
        grad_clip_norm: Clip the global gradient norm to this; ``None`` = off
            (SB3's DQN: 10).
        aux_weight: Weight of the auxiliary loss ``mean((landing_x - label)^2)``
            next to the TD loss, for a Q-network with a ``landing_x`` output
            (``build_q_network(..., landing_head=True)``); batches then carry
            ``aux`` labels ``[B, 1]`` (``ReplayMemory(aux_dim=1)``). Labels are
            landing x / width, so a 10 px error costs 6e-4 times the weight.
        jit_compile: TensorFlow: compile the train step with XLA. Measured on 2
            CPU cores: the small CNN steps 1.4-2x faster, the MLP alike, the
            book's CNN within noise (+-20 %, either way). Default on.

    """

    lr: float = 2.5e-4
    optimizer: Optimizer = "adam"
    loss: Loss = "huber"
    huber_delta: float = 1.0
    double: bool = True
    target_update: TargetUpdate = "hard"
    target_period: int = 500
    tau: float = 0.005
    grad_clip_norm: float | None = 10.0
    aux_weight: float = 10.0
    jit_compile: bool = True

    def __post_init__(self) -> None:
        for name, value, valid in (
            ("optimizer", self.optimizer, get_args(Optimizer)),
            ("loss", self.loss, get_args(Loss)),
            ("target_update", self.target_update, get_args(TargetUpdate)),
        ):
            if value not in valid:
                raise ValueError(f"DQNConfig: unknown {name} {value!r}; choose one of {valid}")
        if self.target_update == "hard" and self.target_period < 1:
            raise ValueError(f"DQNConfig: target_period must be >= 1, got {self.target_period}")
        if self.target_update == "polyak" and not 0.0 < self.tau <= 1.0:
            raise ValueError(f"DQNConfig: tau must lie in (0, 1], got {self.tau}")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ValueError(
                f"DQNConfig: grad_clip_norm must be > 0 or None, got {self.grad_clip_norm}"
            )
        if self.aux_weight < 0:
            raise ValueError(f"DQNConfig: aux_weight must be >= 0, got {self.aux_weight}")
        if self.lr <= 0:
            raise ValueError(f"DQNConfig: lr must be > 0, got {self.lr}")


# -- the maths ---------------------------------------------------------------------


def td_targets(
    rewards: Any, discounts: Any, next_q_target: Any, next_q_online: Any | None = None
) -> Any:
    """Q-learning targets [B]: ``r + discount * Q_target(s', a')``.

    ``a' = argmax_a next_q_online`` for double DQN (``next_q_online`` given),
    else ``argmax_a next_q_target`` (plain max). ``discounts`` [B] is
    ``gamma ** n`` or 0 after the game terminated, so no bootstrapping there.
    """
    ops = keras.ops
    if next_q_online is None:
        next_value = ops.max(next_q_target, axis=-1)  # [B]
    else:
        best = ops.argmax(next_q_online, axis=-1)  # [B]
        next_value = ops.take_along_axis(next_q_target, best[:, None], axis=-1)[:, 0]
    return rewards + discounts * next_value


def elementwise_loss(td: Any, kind: str, delta: float = 1.0) -> Any:
    """Per-sample loss [B] of TD errors ``td`` [B]: Huber (``delta``) or squared error."""
    ops = keras.ops
    if kind == "mse":
        return ops.square(td)
    abs_td = ops.abs(td)
    quadratic = ops.minimum(abs_td, delta)
    return 0.5 * ops.square(quadratic) + delta * (abs_td - quadratic)


# -- the agent ---------------------------------------------------------------------


class DQNAgent:
    """ε-greedy deep Q-learning agent around a Keras Q-network.

    Args:
        model: ``obs [B, ...] -> Q [B, A]`` (see :func:`~catchrl.agents.networks.build_q_network`).
        config: Hyperparameters.
        num_actions: Number of actions A (Catch: 3).
        seed: Seed of the agent's generator (exploration only; seed the network
            through its builder).

    """

    def __init__(
        self,
        model: keras.Model,
        config: DQNConfig | None = None,
        num_actions: int = 3,
        seed: int | None = None,
    ) -> None:
        self.model = model
        self.config = config = config or DQNConfig()
        self.num_actions = int(num_actions)
        try:
            structure = model.output  # a tensor, [q, aux] or a dict
        except AttributeError:  # a Sequential model: only .outputs
            structure = model.outputs
        q_shape = q_output(structure).shape
        if q_shape[-1] != self.num_actions:
            raise ValueError(
                f"DQNAgent: the model outputs {q_shape[-1]} Q-values, "
                f"num_actions is {self.num_actions}"
            )
        self.has_aux = has_aux_output(model)
        self.rng = np.random.default_rng(seed)
        self.train_steps = 0
        self.target_model: keras.Model | None = None
        if config.target_update != "none":
            self.target_model = keras.models.clone_model(model)
            self.target_model.set_weights(model.get_weights())
        self.optimizer = _make_optimizer(config)
        self.optimizer.build(model.trainable_variables)
        self._q = _backend.compile_forward(model)
        self._q_target: Any = None  # compiled on first use
        self._compiled: dict[int, Any] = {}  # steps a call takes -> its compiled steps

    def _train(self, batches: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
        """``len(batches)`` gradient steps in one compiled call (compiled on first use)."""
        steps = len(batches)
        if steps not in self._compiled:
            self._compiled[steps] = self._compile_train_step(steps)
        return self._compiled[steps](batches)

    def _compile_train_step(self, steps: int) -> Any:
        """Compiled gradient steps for the current config (Polyak rate included)."""
        config = self.config
        return _backend.compile_train_step(
            self.model,
            self.target_model,
            self.optimizer,
            self._loss,
            # Without a target network double DQN's argmax and max come from one net.
            double=config.double and self.target_model is not None,
            grad_clip_norm=config.grad_clip_norm,
            tau=config.tau if config.target_update == "polyak" else None,
            jit_compile=config.jit_compile,
            steps=steps,
        )

    def set_target_update(self, target_update: TargetUpdate, tau: float | None = None) -> None:
        """Switch how the target network follows the online one, from the next step on.

        Recompiles the train step; the weights, the optimiser and the counters stay.

        Args:
            target_update: ``"hard"`` or ``"polyak"`` (an agent built without a
                target network, ``"none"``, has none to update).
            tau: The Polyak rate (default: the config's).

        Raises:
            ValueError: the agent has no target network, or the settings are invalid.

        """
        if self.target_model is None or target_update == "none":
            raise ValueError(
                "DQNAgent.set_target_update: only an agent with a target network can "
                f"switch its update, got {self.config.target_update!r} -> {target_update!r}"
            )
        tau = self.config.tau if tau is None else tau
        self.config = replace(self.config, target_update=target_update, tau=tau)
        self._compiled.clear()

    # -- acting ---------------------------------------------------------------

    def q_values(self, obs: np.ndarray, target: bool = False) -> np.ndarray:
        """Q-values ``[B, A]`` float32 of a batch of observations ``[B, ...]``.

        ``target``: the target network's (under Polyak updates, a running average of
        the online network); the online network's when the agent has no target.
        """
        obs = np.asarray(obs)
        expected = len(self.model.inputs[0].shape)
        if obs.ndim != expected:
            raise ValueError(
                f"DQNAgent: expected a batch of observations with {expected} "
                f"dimensions [B, ...], got shape {obs.shape}"
            )
        if target and self.target_model is not None:
            self._q_target = self._q_target or _backend.compile_forward(self.target_model)
            return np.asarray(self._q_target(obs), dtype=np.float32)
        return np.asarray(self._q(obs), dtype=np.float32)

    def act(self, obs: np.ndarray, epsilon: float) -> np.ndarray:
        """ε-greedy actions ``[B]`` int64 for a batch of observations ``[B, ...]``.

        Both random draws are made for every observation whatever ε, so the
        generator's stream does not depend on the network; the network is not
        called when every action is random.
        """
        b = len(obs)
        explore = self.rng.random(b) < epsilon  # [B]
        random_actions = self.rng.integers(0, self.num_actions, size=b)  # [B]
        if explore.all():
            return random_actions.astype(np.int64)
        return np.where(explore, random_actions, self.greedy(obs)).astype(np.int64)

    def greedy(self, obs: np.ndarray, target: bool = False) -> np.ndarray:
        """Greedy actions ``[B]`` int64: the argmax of the Q-values (``target``: :meth:`q_values`).

        Draws nothing from the agent's generator, so evaluating (any number of
        games) never changes the exploration of the training that follows.
        """
        return np.argmax(self.q_values(obs, target), axis=-1).astype(np.int64)

    # -- learning -------------------------------------------------------------

    def _loss(
        self,
        q: Any,
        next_q_online: Any | None,
        next_q_target: Any,
        actions: Any,
        rewards: Any,
        discounts: Any,
        weights: Any,
        aux_pred: Any | None = None,
        aux: Any | None = None,
    ) -> tuple[Any, Any]:
        """Weighted Q-learning loss [] and TD errors [B] (``keras.ops``; see ``_backend``).

        With an auxiliary output, ``aux_weight * mean((aux_pred - aux)^2)`` is added.
        """
        ops = keras.ops
        targets = ops.stop_gradient(
            td_targets(rewards, discounts, next_q_target, next_q_online)
        )  # [B]
        q_taken = ops.take_along_axis(q, ops.cast(actions, "int32")[:, None], axis=-1)[:, 0]
        td = targets - q_taken  # [B]
        per_sample = elementwise_loss(td, self.config.loss, self.config.huber_delta)
        loss = ops.mean(weights * per_sample)
        if aux_pred is not None:  # (weight 0 still adds the term: every weight gets a gradient)
            labels = ops.reshape(ops.cast(aux, "float32"), ops.shape(aux_pred))
            loss = loss + self.config.aux_weight * ops.mean(
                ops.square(ops.cast(aux_pred, "float32") - labels)
            )
        return loss, td

    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """One gradient step on a :meth:`ReplayMemory.sample` batch, then the target sync.

        Returns:
            ``loss``, ``q_mean`` (mean Q of the batch), ``td_abs_mean``,
            ``grad_norm`` (before clipping) as floats, and ``td_errors`` [B]
            (targets minus Q of the taken actions) for prioritised replay.

        """
        return self.train_steps_on([batch])[0]

    def train_steps_on(self, batches: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
        """A gradient step on each batch in turn, each followed by its target sync.

        The steps between two hard target copies run as one compiled call (with
        TensorFlow: one graph calling each step's compiled function in turn, which
        saves part of the ~0.9 ms a call costs). The results are those of
        :meth:`train_step` on each batch, in order; on CPU the weights are the same
        to the last bit (``tests/agents/test_dqn.py``, and a whole ``fast-state`` run
        in ``tests/app/test_train_cli.py``).
        """
        if self.has_aux and any("aux" not in batch for batch in batches):
            raise ValueError(
                "DQNAgent.train_step: the model has an auxiliary output, so the "
                "batch needs 'aux' labels (ReplayMemory(aux_dim=1))"
            )
        hard, period = self.config.target_update == "hard", self.config.target_period
        results: list[dict[str, Any]] = []
        while len(results) < len(batches):
            todo = batches[len(results) :]
            if hard:  # a call ends where a copy is due
                todo = todo[: period - self.train_steps % period]
            for out in self._train(todo):
                result: dict[str, Any] = {k: float(v) for k, v in out.items() if k != "td_errors"}
                result["td_errors"] = np.asarray(out["td_errors"], dtype=np.float32)
                results.append(result)
            self.train_steps += len(todo)
            if hard and self.train_steps % period == 0:
                self.sync_target()
        return results

    @property
    def learning_rate(self) -> float:
        """The optimiser's current learning rate (checkpoints carry it)."""
        return float(self.optimizer.learning_rate)

    def set_learning_rate(self, lr: float) -> None:
        """Change the learning rate from the next train step on (the compiled step reads it)."""
        if not lr > 0:
            raise ValueError(f"DQNAgent.set_learning_rate: lr must be > 0, got {lr}")
        self.optimizer.learning_rate = lr

    def sync_target(self) -> None:
        """Copy the online weights into the target network (a no-op without one)."""
        if self.target_model is not None:
            _backend.copy_weights(self.model, self.target_model)

    # -- state, saving ------------------------------------------------------------

    # To resume exactly a caller saves both halves, the arrays (np.savez-ready) and
    # the JSON-ready meta, and hands both back to set_state_arrays.

    def _state_variables(self) -> dict[str, list]:
        """The variables a resume restores, by group (``online``, ``optimizer``, ``target``)."""
        groups = {"online": self.model.weights, "optimizer": self.optimizer.variables}
        if self.target_model is not None:
            groups["target"] = self.target_model.weights
        return groups

    def get_state_arrays(self) -> dict[str, np.ndarray]:
        """Every weight, as numpy arrays named ``group/NNN`` (``np.savez``-ready).

        Groups: ``online`` (all model weights), ``target`` (with a target
        network) and ``optimizer`` (its variables, step count included), each
        in the order of its variables.
        """
        return {
            f"{group}/{i:03d}": np.array(keras.ops.convert_to_numpy(v.value))
            for group, variables in self._state_variables().items()
            for i, v in enumerate(variables)
        }

    def get_state_meta(self) -> dict[str, Any]:
        """JSON-ready counters: ``train_steps``, ``rng_state`` and the config."""
        return {
            "train_steps": self.train_steps,
            "rng_state": self.rng.bit_generator.state,
            "config": asdict(self.config),
        }

    def set_state_arrays(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state_arrays` and :meth:`get_state_meta`.

        Raises:
            ValueError: the arrays do not fit this agent's networks.

        """
        for group, variables in self._state_variables().items():
            for i, v in enumerate(variables):
                key = f"{group}/{i:03d}"
                if key not in arrays or tuple(arrays[key].shape) != tuple(v.shape):
                    raise ValueError(
                        f"DQNAgent.set_state_arrays: {key} missing or of another shape "
                        f"than {tuple(v.shape)}"
                    )
                v.assign(arrays[key])
        self.train_steps = int(meta["train_steps"])
        self.rng.bit_generator.state = meta["rng_state"]

    def save_model(self, path: str) -> None:
        """Write the online Q-network in Keras format (``path`` ends in ``.keras``)."""
        if not str(path).endswith(".keras"):
            raise ValueError(f"DQNAgent.save_model: path must end in .keras, got {path!r}")
        self.model.save(path)

    @classmethod
    def load_model(
        cls, path: str, config: DQNConfig | None = None, seed: int | None = None
    ) -> DQNAgent:
        """An agent around a Q-network saved with :meth:`save_model` (e.g. to evaluate it)."""
        model = load_q_network(path)
        return cls(model, config, num_actions=int(model.outputs[0].shape[-1]), seed=seed)


def _make_optimizer(config: DQNConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.lr)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=config.lr)
    return keras.optimizers.SGD(learning_rate=config.lr)
