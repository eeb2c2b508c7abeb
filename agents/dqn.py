"""Deep Q-learning (Mnih et al., 2015): :class:`DQNAgent`, its settings the ``[agent]`` table.

ε-greedy acting on a batch; the update (double DQN's targets, n-step discounts from the
replay memory, Huber or squared error, gradient clipping) as a ``tf.function``; the target
sync ``target <- tau * online + (1 - tau) * target`` every ``target_every`` gradient steps
(``target_every = 0``: no target network, as in the book); the state a checkpoint holds.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from catchrl.agents.networks import compile_predict, q_output

LANDING_WEIGHT = 10.0  # the landing head's loss weight (docs/supervised_results.md)


def learning_rate(config: Any, progress: float) -> float:
    """The learning rate at ``progress`` (0 to 1) of the run: ``lr``, or linearly down to 0."""
    decay = 1.0 - min(max(progress, 0.0), 1.0) if config.lr_decay else 1.0
    return float(config.lr) * decay


class DQNAgent:
    """ε-greedy deep Q-learning agent around a Keras Q-network (``[Q, landing_x]`` too).

    ``seed``: the generator of exploration only; ``optimizer``: Adam at ``config.lr`` (the
    book's) by default.
    """

    def __init__(
        self,
        model: keras.Model,
        config: Any,
        num_actions: int = 3,
        seed: int | None = None,
        optimizer: keras.optimizers.Optimizer | None = None,
    ) -> None:
        self.model, self.config, self.num_actions = model, config, int(num_actions)
        q_units = model.outputs[0].shape[-1]
        if q_units != self.num_actions:
            raise ValueError(
                f"DQNAgent: the model outputs {q_units} Q-values, num_actions is {num_actions}"
            )
        self.has_aux = len(model.outputs) > 1  # [q, landing_x]: the landing head
        self.rng = np.random.default_rng(seed)
        self.updates = 0  # gradient steps taken
        self.target_model: keras.Model | None = None
        if config.target_every > 0:
            self.target_model = keras.models.clone_model(model)
            self.target_model.set_weights(model.get_weights())
        self.optimizer = optimizer or keras.optimizers.Adam(learning_rate=config.lr)
        self.optimizer.build(model.trainable_variables)
        self._q = compile_predict(model, q_output)
        self._update = tf.function(self._update_step)

    # -- acting ------------------------------------------------------------------------

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values ``[B, A]`` float32 of a batch of observations."""
        obs = np.asarray(obs)
        if obs.ndim != len(self.model.inputs[0].shape):
            raise ValueError(
                f"DQNAgent: expected a batch of observations [B, "
                f"{', '.join(map(str, self.model.inputs[0].shape[1:]))}], got shape {obs.shape}"
            )
        return np.asarray(self._q(obs), dtype=np.float32)

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions ``[B]`` int64; draws nothing from the agent's generator."""
        return np.argmax(self.q_values(obs), axis=-1).astype(np.int64)

    def act(self, obs: np.ndarray, epsilon: float) -> np.ndarray:
        """ε-greedy actions ``[B]`` int64 for a batch of observations ``[B, ...]``.

        Both draws are made for every observation whatever ε, so the generator's
        stream does not depend on the network; the network is not called when
        every action is random.
        """
        explore = self.rng.random(len(obs)) < epsilon  # [B]
        random_actions = self.rng.integers(0, self.num_actions, size=len(obs))  # [B]
        if explore.all():
            return random_actions.astype(np.int64)
        return np.where(explore, random_actions, self.greedy(obs)).astype(np.int64)

    # -- learning ----------------------------------------------------------------------

    def train_step(self, batch: dict[str, np.ndarray], progress: float = 0.0) -> dict[str, Any]:
        """One gradient step on a :meth:`ReplayMemory.sample` batch, then the target sync.

        ``progress`` (0 to 1, the run's) sets the learning rate. Returns ``loss``,
        ``grad_norm`` (before clipping), ``lr`` and ``td_errors [B]`` (for PER).
        """
        if self.has_aux and "aux" not in batch:
            raise ValueError(
                "DQNAgent.train_step: the model has an auxiliary output, so the "
                "batch needs 'aux' labels (ReplayMemory(aux_dim=1))"
            )
        self.updates += 1
        every = self.config.target_every
        lr = learning_rate(self.config, progress)
        aux = batch["aux"] if "aux" in batch else np.zeros((len(batch["actions"]), 0), np.float32)
        loss, td, norm = self._update(
            batch["obs"],
            batch["actions"].astype(np.int32),
            batch["rewards"],
            batch["next_obs"],
            batch["discounts"],
            batch["weights"],
            aux,
            np.float32(lr),
            sync=every > 0 and self.updates % every == 0,
        )
        return {"loss": float(loss), "grad_norm": float(norm), "td_errors": td.numpy(), "lr": lr}

    def _update_step(
        self, obs, actions, rewards, next_obs, discounts, weights, aux, lr, sync: bool
    ) -> tuple[Any, Any, Any]:
        """The update: one gradient step on the Q-learning loss (compiled by ``__init__``)."""
        ops, cfg = keras.ops, self.config
        # Targets [B]: r + discount * Q_target(s', argmax_a Q_online(s', a)) (double DQN).
        # r holds the n-step discounted rewards; discount is gamma**n, 0 after a terminal.
        # Without a target network (the book) both come from the online network: the max.
        next_q = q_output(self.model(next_obs, training=False))  # [B, A]
        next_q_target = next_q
        if self.target_model is not None:
            next_q_target = q_output(self.target_model(next_obs, training=False))
        best = ops.argmax(next_q, axis=-1)[:, None]  # [B, 1]
        next_value = ops.take_along_axis(next_q_target, best, axis=-1)[:, 0]  # [B]
        targets = ops.stop_gradient(rewards + discounts * next_value)  # [B]
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            out = self.model(obs, training=True)
            q = ops.take_along_axis(q_output(out), actions[:, None], axis=-1)[:, 0]  # [B]
            td = targets - q  # [B]
            if cfg.loss == "huber":  # quadratic within 1, linear beyond (Nature DQN)
                small = ops.minimum(ops.abs(td), 1.0)
                per_sample = 0.5 * ops.square(small) + ops.abs(td) - small
            else:  # "mse", the book's
                per_sample = ops.square(td)
            loss = ops.mean(weights * per_sample)  # weights: PER's importance weights, or 1
            if self.has_aux:  # the landing head's squared error, weighted
                loss += LANDING_WEIGHT * ops.mean(ops.square(out[1] - aux))
        grads = tape.gradient(loss, variables)
        norm = tf.linalg.global_norm(grads)
        if cfg.grad_clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, cfg.grad_clip_norm, use_norm=norm)
        self.optimizer.learning_rate.assign(lr)
        self.optimizer.apply(grads, variables)
        if sync:
            self._sync_target()
        return loss, td, norm

    def _sync_target(self) -> None:
        """The one target rule: ``target <- tau * online + (1 - tau) * target``."""
        tau = float(self.config.tau)
        for target, online in zip(self.target_model.weights, self.model.weights, strict=True):
            target.assign(online if tau == 1.0 else tau * online + (1.0 - tau) * target)

    # -- state, saving -----------------------------------------------------------------

    def _state_variables(self) -> dict[str, list]:
        """The variables a resume restores, by group (``online``, ``optimizer``, ``target``)."""
        groups = {"online": self.model.weights, "optimizer": self.optimizer.variables}
        if self.target_model is not None:
            groups["target"] = self.target_model.weights
        return groups

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Every variable as ``group/NNN`` numpy arrays, and the counters and generator."""
        arrays = {
            f"{group}/{i:03d}": np.array(keras.ops.convert_to_numpy(v.value))
            for group, variables in self._state_variables().items()
            for i, v in enumerate(variables)
        }
        return arrays, {"updates": self.updates, "rng_state": self.rng.bit_generator.state}

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (ValueError: the arrays do not fit this agent's networks)."""
        for group, variables in self._state_variables().items():
            for i, v in enumerate(variables):
                key = f"{group}/{i:03d}"
                saved = tuple(arrays[key].shape) if key in arrays else "missing"
                if saved != tuple(v.shape):
                    raise ValueError(
                        f"DQNAgent.set_state: {key} is {saved} in the checkpoint, "
                        f"{tuple(v.shape)} in this agent's network: another network "
                        "(agent.network, or an earlier catchrl's) saved it"
                    )
                v.assign(arrays[key])
        self.updates = int(meta["updates"])
        self.rng.bit_generator.state = meta["rng_state"]
