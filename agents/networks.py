"""Q-network builders: plain Keras 3 functional models, ``obs -> Q-values [B, A]``.

``book`` (the book's CNN, 3,356,835 parameters on 80 x 80 x 4), ``small``, ``tiny``
(reads 20 x 20 frames, the default; larger ones are average-pooled to them first) and
``mlp`` (states; grid boards flattened). Frames enter as the env's uint8 and are
scaled inside the model, so a saved ``.keras`` file is all an evaluator needs.
``landing_head=True`` adds a second output ``landing_x [B, 1]`` on the same trunk
(``agent.module = "landing-head"``); :func:`q_output` picks the Q-values out of any
result. One ``seed`` seeds every initialiser. :func:`compile_predict` is the one
inference path of catchrl's models.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers

NETWORK_KINDS = ("book", "small", "tiny", "mlp")
_CNNS = {  # pool, convolutions (filters, size, stride), dense units, initialiser
    # The book's CNN (DeepMind's Atari network, other sizes): 80 -> 20 -> 10 -> 10, 512 units;
    # Keras' "normal" is RandomNormal(stddev=0.05).
    "book": (1, ((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512, "RandomNormal"),
    # A light CNN: 80 -> 40 (the ball's 4 x 4 px become 2 x 2) -> 20 -> 10, 128 units.
    "small": (2, ((16, 4, 2), (32, 3, 2)), 128, "HeUniform"),
    # The cheapest that still sees every position: 80 -> 20 (block means) -> 5 x 5 (4 x 4
    # patches, no overlap), 64 units.
    "tiny": (4, ((16, 4, 4),), 64, "HeUniform"),
}
MIN_POOLED_SIZE = 20  # the pool stops at 20 x 20, the size of the ball (20 px of 400)


@keras.saving.register_keras_serializable(package="catchrl")
class DuelingAggregate(layers.Layer):
    """Dueling head's combination (Wang et al., 2016): ``Q = V + A - mean_a(A)``.

    Called on ``[value [B, 1], advantages [B, A]]``; has no weights.
    """

    def call(self, inputs: list[Any]) -> Any:
        """Combine ``[value [B, 1], advantages [B, A]]`` into Q-values [B, A]."""
        value, advantages = inputs
        return value + advantages - keras.ops.mean(advantages, axis=-1, keepdims=True)


def q_output(outputs: Any) -> Any:
    """The Q-values ``[B, A]`` of a Q-network's result (a tensor, or ``[q, landing_x]``)."""
    return outputs[0] if isinstance(outputs, list | tuple) else outputs


def build_q_network(
    kind: str,
    obs_shape: tuple[int, ...],
    num_actions: int = 3,
    dueling: bool = False,
    landing_head: bool = False,
    seed: int | None = None,
    hidden_units: tuple[int, ...] = (64, 64),
) -> keras.Model:
    """An uncompiled Q-network ``obs [B, *obs_shape] -> Q [B, num_actions]``.

    ``obs_shape``: ``(H, W, C)`` for the CNNs, ``(D,)`` or a board ``(H, W)`` for ``"mlp"``
    (``hidden_units``); ``dueling``: a ``V + A - mean(A)`` head; ``landing_head``: outputs
    ``[q, landing_x [B, 1]]``. ValueError: unknown kind, or a shape it cannot take.
    """
    if kind not in NETWORK_KINDS:
        raise ValueError(f"build_q_network: unknown kind {kind!r}; choose one of {NETWORK_KINDS}")
    obs_shape = tuple(int(d) for d in obs_shape)
    seeds = itertools.count(seed) if seed is not None else itertools.repeat(None)
    name = f"q_{kind}{'_dueling' if dueling else ''}"
    if kind == "mlp":
        if len(obs_shape) not in (1, 2):
            raise ValueError(
                f"build_q_network: 'mlp' takes state vectors (D,) or boards (H, W), "
                f"got obs_shape {obs_shape}; use 'book' or 'small' for images"
            )
        inputs = keras.Input(obs_shape, dtype="float32", name="obs")
        x = layers.Flatten()(inputs) if len(obs_shape) == 2 else inputs
        for units in hidden_units:
            init = _init("HeUniform", next(seeds))
            x = layers.Dense(units, activation="relu", kernel_initializer=init)(x)
    else:
        if len(obs_shape) != 3:
            raise ValueError(
                f"build_q_network: {kind!r} is a CNN for image stacks (H, W, C), got "
                f"obs_shape {obs_shape}; use 'mlp' for state vectors"
            )
        inputs = keras.Input(obs_shape, dtype="uint8", name="obs")
        x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
        pool, convs, units, init = _CNNS[kind]
        pool = max(1, min(pool, obs_shape[0] // MIN_POOLED_SIZE))  # 20 x 20 frames: no pool
        x = layers.AveragePooling2D(pool)(x) if pool > 1 else x
        for n, size, stride in convs:  # n filters, same-padded: no position pooled away
            k = _init(init, next(seeds))
            x = layers.Conv2D(n, size, stride, "same", activation="relu", kernel_initializer=k)(x)
        x = layers.Flatten()(x)
        x = layers.Dense(units, activation="relu", kernel_initializer=_init(init, next(seeds)))(x)
    head = "RandomNormal" if kind == "book" else "GlorotUniform"

    def dense(units: int, name: str, init_kind: str = head) -> layers.Dense:
        return layers.Dense(units, name=name, kernel_initializer=_init(init_kind, next(seeds)))

    if dueling:  # Wang et al., 2016
        q = DuelingAggregate(name="q")([dense(1, "value")(x), dense(num_actions, "advantages")(x)])
    else:
        q = dense(num_actions, "q")(x)
    if landing_head:
        landing = dense(1, "landing_x", "GlorotUniform")(x)
        return keras.Model(inputs, [q, landing], name=f"{name}_aux")
    return keras.Model(inputs, q, name=name)


def compile_predict(
    model: keras.Model, select: Callable[[Any], Any] = lambda out: out
) -> Callable[[np.ndarray], Any]:
    """One compiled ``x [B, ...] -> select(model(x))`` as numpy, for any batch size B.

    The inference path of catchrl's Keras models (Q-networks, perception, imitation and
    sequence models): one ``tf.function`` (no XLA: as fast here, and XLA's first compile
    writes to stderr).
    """
    import tensorflow as tf

    dtype = model.inputs[0].dtype
    spec = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), dtype)]

    def forward(x: Any) -> Any:
        return select(model(x, training=False))

    compiled = tf.function(forward, input_signature=spec).get_concrete_function()

    def call(x: np.ndarray) -> Any:
        out = compiled(tf.convert_to_tensor(np.asarray(x, dtype=dtype)))
        return tf.nest.map_structure(lambda t: t.numpy(), out)

    return call


def load_q_network(path: str) -> keras.Model:
    """Load a ``.keras`` Q-network (not compiled), catchrl's custom layers registered."""
    import catchrl.agents.layers  # noqa: F401  (registers the custom layers)

    return keras.saving.load_model(path, compile=False)


def _init(kind: str, seed: int | None) -> keras.initializers.Initializer:
    return keras.initializers.get({"class_name": kind, "config": {"seed": seed}})
