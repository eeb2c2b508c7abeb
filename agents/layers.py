"""Custom Keras layers a Q-network may contain, registered as ``"catchrl>Name"`` on import.

Here, not in :mod:`catchrl.supervised`, so that ``load_q_network`` resolves them; saved
``.keras`` files refer to these names, so they must not change.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="catchrl")
class ClipToBox(keras.layers.Layer):
    """Clip each feature into its own ``[low, high]`` (e.g. an observation space's bounds)."""

    def __init__(self, low: list[float], high: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.low, self.high = [float(v) for v in low], [float(v) for v in high]

    def call(self, inputs: Any) -> Any:
        """Return ``clip(inputs, low, high)`` feature by feature."""
        low, high = (ops.convert_to_tensor(b, inputs.dtype) for b in (self.low, self.high))
        return ops.clip(inputs, low, high)

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments."""
        return {**super().get_config(), "low": self.low, "high": self.high}


@keras.saving.register_keras_serializable(package="catchrl")
class SpatialSoftArgmax(keras.layers.Layer):
    """Expected image coordinates of each channel's softmax: ``[B, H, W, C] -> [B, 2C]``.

    For every channel a softmax over the ``H x W`` positions (sharpened by a
    learned per-channel temperature) gives a distribution whose mean ``(x, y)``
    is a sub-pixel position in ``[0, 1]`` (pixel centres ``(i + 0.5) / W``).
    Output columns: ``x_0 .. x_{C-1}, y_0 .. y_{C-1}``. This keeps exactly the
    information that pooling throws away (Levine et al., 2016, "End-to-end
    training of deep visuomotor policies").
    """

    def __init__(self, initial_temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial_temperature = float(initial_temperature)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create the per-channel inverse temperatures (``input_shape``: ``[B, H, W, C]``)."""
        self.height, self.width, self.channels = (int(d) for d in input_shape[1:])
        init = keras.initializers.Constant(math.log(self.initial_temperature))
        self.log_beta = self.add_weight(name="log_beta", shape=(self.channels,), initializer=init)

    def call(self, inputs: Any) -> Any:
        """Return the expected ``x`` then ``y`` of every channel: ``[B, 2C]``."""
        h, w, c = self.height, self.width, self.channels
        x = ops.cast(inputs, "float32")  # softmax in float32, also under mixed precision
        logits = ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (-1, c, h * w))  # [B, C, HW]
        logits = logits * ops.exp(ops.cast(self.log_beta, "float32"))[None, :, None]
        prob = ops.softmax(logits, axis=-1)
        ys = (ops.arange(h, dtype="float32") + 0.5) / h
        xs = (ops.arange(w, dtype="float32") + 0.5) / w
        grid_y, grid_x = (ops.reshape(g, (h * w,)) for g in ops.meshgrid(ys, xs, indexing="ij"))
        ex = ops.sum(prob * grid_x, axis=-1)  # [B, C]
        ey = ops.sum(prob * grid_y, axis=-1)
        return ops.cast(ops.concatenate([ex, ey], axis=-1), self.compute_dtype)

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments."""
        return {**super().get_config(), "initial_temperature": self.initial_temperature}
