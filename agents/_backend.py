"""The one place that knows which Keras backend runs: compiled inference and train steps.

:mod:`catchrl.agents.dqn` writes the Q-learning maths once with ``keras.ops``
(a ``loss_fn``); this module wraps it in each backend's way of taking
gradients and compiling:

- TensorFlow: ``tf.function`` (optionally ``jit_compile=True``, XLA) around a
  ``GradientTape`` step and the optimizer's stateful ``apply``;
- JAX: ``jax.jit`` of a pure step built on ``model.stateless_call`` and
  ``optimizer.stateless_apply``; the new values are written back into the
  Keras variables after each call (a reference swap, no copy);
- PyTorch: eager autograd (``loss.backward()``), then the optimizer's ``apply``.

Inference goes through :func:`compile_predict` (any single-input model: the
Q-networks here, the supervised perception, imitation and sequence models) and
:func:`compile_forward` (its Q-values-only form).

The backend is whatever ``keras.backend.backend()`` says, i.e. ``KERAS_BACKEND``
as set before keras was first imported. The framework itself is imported only
inside the function that needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from catchrl.agents.networks import aux_output, q_output

__all__ = [
    "BATCH_KEYS",
    "compile_forward",
    "compile_predict",
    "compile_train_step",
    "copy_weights",
]

# The sampled batch entries a train step reads, in argument order.
BATCH_KEYS = ("obs", "actions", "rewards", "next_obs", "discounts", "weights", "aux")

# loss_fn(q [B, A], next_q_online [B, A] | None, next_q_target [B, A], actions [B],
#         rewards [B], discounts [B], weights [B], aux_pred [B, K] | None,
#         aux [B, K]) -> (loss [], td_errors [B]). aux_pred is the model's auxiliary
# output (None for a Q-only model), aux the batch's labels ([B, 0] when it has none).
LossFn = Callable[..., tuple[Any, Any]]
# Compiled train steps: numpy batches, one a gradient step in turn -> numpy metrics of
# each step (loss, q_mean, td_abs_mean, grad_norm: scalars; td_errors [B]).
TrainStep = Callable[[list[dict[str, np.ndarray]]], list[dict[str, np.ndarray]]]
OneStep = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def backend() -> str:
    """The running Keras backend's name."""
    return keras.backend.backend()


def compile_predict(
    model: keras.Model, select: Callable[[Any], Any] | None = None
) -> Callable[[np.ndarray], Any]:
    """One compiled ``x [B, ...] -> select(model(x))`` as numpy, for any batch size B.

    The one inference path of catchrl's Keras models (Q-networks, perception,
    imitation and sequence models): never ``model.predict`` per sample. Inputs
    are converted to the model's input dtype first.

    Args:
        model: A single-input Keras model (its input shape fixed but for B).
        select: Applied to the model's output inside the compiled function,
            e.g. :func:`~catchrl.agents.networks.q_output`; default all of it.

    Returns:
        A function from a numpy batch to numpy arrays in the (selected)
        output's structure: one array, or a dict / list of them.

    """
    name = backend()
    dtype = model.inputs[0].dtype
    pick = select if select is not None else (lambda out: out)
    if name == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), dtype)

        def forward(x: Any) -> Any:
            return pick(model(x, training=False))

        # Calling the concrete function skips tf.function's argument binding: ~0.4 ms
        # instead of ~1 ms a call on 2 CPU cores. Batches go through XLA (compiled
        # once per batch size; small CNN, 16 stacks: 1.8 ms instead of 6.7 ms on 2
        # CPU cores); one observation does not (1.2 ms plain, 1.6 ms with XLA).
        plain = tf.function(forward, input_signature=[spec]).get_concrete_function()
        xla = tf.function(forward, input_signature=[spec], jit_compile=True).get_concrete_function()

        def call(x: np.ndarray) -> Any:
            x = np.asarray(x, dtype=dtype)
            out = (xla if len(x) > 1 else plain)(tf.convert_to_tensor(x))
            return tf.nest.map_structure(lambda t: t.numpy(), out)

        return call
    if name == "jax":
        import jax

        @jax.jit
        def jax_forward(trainable: list, non_trainable: list, x: Any) -> Any:
            out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return pick(out)

        def call(x: np.ndarray) -> Any:
            out = jax_forward(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                np.asarray(x, dtype=dtype),
            )
            return jax.tree_util.tree_map(np.asarray, out)

        return call
    if name == "torch":
        import torch

        def torch_forward(x: np.ndarray) -> Any:
            with torch.no_grad():
                out = pick(model(np.asarray(x, dtype=dtype), training=False))
            return keras.tree.map_structure(keras.ops.convert_to_numpy, out)

        return torch_forward
    raise NotImplementedError(
        f"catchrl.agents: the {name!r} Keras backend is not supported; use tensorflow, jax or torch"
    )


def compile_forward(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """One compiled ``obs [B, ...] -> Q [B, A]`` of a Q-network (:func:`compile_predict`)."""
    return compile_predict(model, q_output)


def copy_weights(source: keras.Model, dest: keras.Model, tau: float = 1.0) -> None:
    """``dest <- tau * source + (1 - tau) * dest`` for every weight (1.0: a hard copy)."""
    for s, d in zip(source.weights, dest.weights, strict=True):
        d.assign(s.value if tau == 1.0 else tau * s.value + (1.0 - tau) * d.value)


def compile_train_step(
    online: keras.Model,
    target: keras.Model | None,
    optimizer: keras.optimizers.Optimizer,
    loss_fn: LossFn,
    *,
    double: bool,
    grad_clip_norm: float | None,
    tau: float | None,
    jit_compile: bool,
    steps: int = 1,
) -> TrainStep:
    """Compiled DQN gradient steps for the running backend: ``steps`` batches, one call.

    Args:
        online: The trained Q-network.
        target: The target network, or ``None`` to take targets from ``online``.
        optimizer: A built Keras optimizer for ``online.trainable_variables``.
        loss_fn: The Q-learning loss written with ``keras.ops`` (see ``LossFn``).
        double: Also evaluate ``online`` on the next observations (double DQN).
        grad_clip_norm: Clip the global gradient norm to this (``None``: off).
        tau: Polyak-average the target towards ``online`` after each step by
            this rate (``None``: leave the target alone).
        jit_compile: TensorFlow only: compile the step with XLA.
        steps: Gradient steps a call takes, one on each of its batches in turn.
            TensorFlow runs them from one graph, each step its own compiled (XLA)
            function: a call costs about 0.9 ms however small the batch (2 CPU
            cores, the ``tiny`` network), and one call of two steps saves about
            0.4 ms; the weights are those of one call a step, to the bit. JAX and
            torch call one step per batch.

    """
    name = backend()
    if name == "tensorflow":
        args = (double, grad_clip_norm, tau, jit_compile, steps)
        return _tf_train_steps(online, target, optimizer, loss_fn, *args)
    build = {"jax": _jax_train_step, "torch": _torch_train_step}
    if name not in build:
        raise NotImplementedError(
            f"catchrl.agents: the {name!r} Keras backend is not "
            "supported; use tensorflow, jax or torch"
        )
    one = build[name](online, target, optimizer, loss_fn, double, grad_clip_norm, tau, jit_compile)
    return lambda batches: [one(batch) for batch in batches]


def _clip(grads: list, clip_norm: float | None) -> tuple[list, Any]:
    """Scale ``grads`` so their global norm is at most ``clip_norm``; also return the norm."""
    ops = keras.ops
    norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads))
    if clip_norm is None:
        return grads, norm
    scale = ops.minimum(1.0, clip_norm / ops.maximum(norm, 1e-12))
    return [g * scale for g in grads], norm


def _as_batch(batch: dict[str, np.ndarray], obs_dtype: str) -> tuple[np.ndarray, ...]:
    obs, actions, rewards, next_obs, discounts, weights = (batch[k] for k in BATCH_KEYS[:-1])
    f32 = np.float32
    aux = batch.get("aux")
    aux = np.zeros((len(actions), 0), f32) if aux is None else np.asarray(aux, dtype=f32)
    return (
        np.asarray(obs, dtype=obs_dtype),
        np.asarray(actions, dtype=np.int32),
        np.asarray(rewards, dtype=f32),
        np.asarray(next_obs, dtype=obs_dtype),
        np.asarray(discounts, dtype=f32),
        np.asarray(weights, dtype=f32),
        aux.reshape(len(actions), -1),
    )


def _metrics(loss: Any, q: Any, td: Any, norm: Any) -> dict[str, Any]:
    ops = keras.ops
    return {
        "loss": loss,
        "q_mean": ops.mean(q),
        "td_abs_mean": ops.mean(ops.abs(td)),
        "grad_norm": norm,
        "td_errors": td,
    }


def _to_numpy(out: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}


def _tf_train_steps(
    online: keras.Model,
    target: keras.Model | None,
    optimizer: keras.optimizers.Optimizer,
    loss_fn: LossFn,
    double: bool,
    clip_norm: float | None,
    tau: float | None,
    jit_compile: bool,
    steps: int,
) -> TrainStep:
    import tensorflow as tf

    obs_dtype = online.inputs[0].dtype
    obs_spec = tf.TensorSpec((None, *online.inputs[0].shape[1:]), obs_dtype)
    vec = tf.TensorSpec((None,), tf.float32)
    signature = [
        obs_spec,
        tf.TensorSpec((None,), tf.int32),
        vec,
        obs_spec,
        vec,
        vec,
        tf.TensorSpec((None, None), tf.float32),
    ]
    variables = online.trainable_variables
    target_net = online if target is None else target

    def step(
        obs: Any, actions: Any, rewards: Any, next_obs: Any, discounts: Any, weights: Any, aux: Any
    ) -> dict[str, Any]:
        next_q_target = q_output(target_net(next_obs, training=False))  # [B, A]
        next_q_online = q_output(online(next_obs, training=False)) if double else None
        with tf.GradientTape() as tape:
            out = online(obs, training=True)
            q = q_output(out)  # [B, A]
            loss, td = loss_fn(
                q,
                next_q_online,
                next_q_target,
                actions,
                rewards,
                discounts,
                weights,
                aux_output(out),
                aux,
            )
        grads, norm = _clip(tape.gradient(loss, variables), clip_norm)
        optimizer.apply(grads, variables)
        if tau is not None and target is not None:
            for t, o in zip(target.trainable_variables, variables, strict=True):
                t.assign(t + tau * (o - t))
        return _metrics(loss, q, td, norm)

    # Each step is compiled on its own (an XLA cluster of its own), and one graph calls
    # them in turn: compiled as one, XLA fuses across the steps, and the weights then
    # differ in the last bit from one call a step. (The variables' reads and writes keep
    # their order: TensorFlow's automatic control dependencies.)
    one = tf.function(step, input_signature=signature, jit_compile=jit_compile)

    def take_steps(*args: Any) -> list[dict[str, Any]]:
        width = len(signature)
        return [one(*args[i : i + width]) for i in range(0, len(args), width)]

    concrete = tf.function(  # see compile_predict
        take_steps, input_signature=signature * steps
    ).get_concrete_function()

    def call(batches: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        if len(batches) != steps:
            raise ValueError(f"train step: compiled for {steps} batch(es), got {len(batches)}")
        tensors = [tf.convert_to_tensor(x) for b in batches for x in _as_batch(b, obs_dtype)]
        return [_to_numpy(out) for out in concrete(*tensors)]

    return call


def _jax_train_step(
    online: keras.Model,
    target: keras.Model | None,
    optimizer: keras.optimizers.Optimizer,
    loss_fn: LossFn,
    double: bool,
    clip_norm: float | None,
    tau: float | None,
    jit_compile: bool,
) -> OneStep:
    import jax

    obs_dtype = online.inputs[0].dtype

    def forward(model: keras.Model, params: tuple, x: Any, training: bool) -> Any:
        out, _ = model.stateless_call(params[0], params[1], x, training=training)
        return out

    def loss_of(trainable: list, non_trainable: list, target_params: tuple, batch: tuple) -> Any:
        obs, actions, rewards, next_obs, discounts, weights, aux = batch
        online_params = (trainable, non_trainable)
        next_q_target = q_output(
            forward(
                online if target is None else target,
                online_params if target is None else target_params,
                next_obs,
                False,
            )
        )  # [B, A]
        next_q_target = jax.lax.stop_gradient(next_q_target)
        next_q_online = (
            jax.lax.stop_gradient(q_output(forward(online, online_params, next_obs, False)))
            if double
            else None
        )
        out = forward(online, online_params, obs, True)
        q = q_output(out)  # [B, A]
        loss, td = loss_fn(
            q,
            next_q_online,
            next_q_target,
            actions,
            rewards,
            discounts,
            weights,
            aux_output(out),
            aux,
        )
        return loss, (q, td)

    grad_fn = jax.value_and_grad(loss_of, has_aux=True)

    @jax.jit
    def step(
        trainable: list, non_trainable: list, opt_vars: list, target_params: tuple, batch: tuple
    ) -> tuple:
        (loss, (q, td)), grads = grad_fn(trainable, non_trainable, target_params, batch)
        grads, norm = _clip(grads, clip_norm)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        if tau is not None and target is not None:
            target_params = (
                [t + tau * (o - t) for t, o in zip(target_params[0], trainable, strict=True)],
                target_params[1],
            )
        return trainable, opt_vars, target_params, _metrics(loss, q, td, norm)

    def call(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = lambda vs: [v.value for v in vs]  # noqa: E731
        target_params = (
            ()
            if target is None
            else (values(target.trainable_variables), values(target.non_trainable_variables))
        )
        trainable, opt_vars, target_params, out = step(
            values(online.trainable_variables),
            values(online.non_trainable_variables),
            values(optimizer.variables),
            target_params,
            _as_batch(batch, obs_dtype),
        )
        for var, value in zip(online.trainable_variables, trainable, strict=True):
            var.assign(value)
        for var, value in zip(optimizer.variables, opt_vars, strict=True):
            var.assign(value)
        if tau is not None and target is not None:
            for var, value in zip(target.trainable_variables, target_params[0], strict=True):
                var.assign(value)
        return _to_numpy(out)

    return call


def _torch_train_step(
    online: keras.Model,
    target: keras.Model | None,
    optimizer: keras.optimizers.Optimizer,
    loss_fn: LossFn,
    double: bool,
    clip_norm: float | None,
    tau: float | None,
    jit_compile: bool,
) -> OneStep:
    import torch

    obs_dtype = online.inputs[0].dtype
    variables = online.trainable_variables
    target_net = online if target is None else target
    to_tensor = keras.ops.convert_to_tensor

    def call(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        obs, actions, rewards, next_obs, discounts, weights, aux = (
            to_tensor(x) for x in _as_batch(batch, obs_dtype)
        )
        with torch.no_grad():
            next_q_target = q_output(target_net(next_obs, training=False))  # [B, A]
            next_q_online = q_output(online(next_obs, training=False)) if double else None
        for v in variables:
            v.value.grad = None
        out = online(obs, training=True)
        q = q_output(out)  # [B, A]
        loss, td = loss_fn(
            q,
            next_q_online,
            next_q_target,
            actions,
            rewards,
            discounts,
            weights,
            aux_output(out),
            aux,
        )
        loss.backward()
        with torch.no_grad():
            grads, norm = _clip([v.value.grad for v in variables], clip_norm)
            optimizer.apply(grads, variables)
            if tau is not None and target is not None:
                for t, o in zip(target.trainable_variables, variables, strict=True):
                    t.assign(t.value + tau * (o.value - t.value))
            out = _metrics(loss.detach(), q.detach(), td.detach(), norm)
        return _to_numpy(out)

    return call
