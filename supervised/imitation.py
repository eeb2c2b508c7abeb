"""Imitation: classify the oracle's actions from frames (the book's "treat it as classification").

The oracle (:class:`~catchrl.agents.scripted.OraclePolicy`) labels every
frame stack of an ``"expert"`` dataset with the action it would take there;
a CNN (any perception architecture's encoder + a softmax head over
left/stay/right) learns to copy it; the saved model plays as any agent
(``catchrl eval RUN/model.keras``, ``catchrl.load_agent``).
"""

from __future__ import annotations

import keras

from catchrl.supervised.perception import build_frames_model

__all__ = ["build_imitation_model"]


def build_imitation_model(
    arch: str = "small",
    input_shape: tuple[int, int, int] = (80, 80, 4),
    num_actions: int = 3,
) -> keras.Model:
    """Build a classifier of actions from raw frames.

    Args:
        arch: One of :data:`~catchrl.supervised.perception.ARCHITECTURES`.
        input_shape: ``(height, width, frames)``.
        num_actions: Classes (left, stay, right).

    Returns:
        An uncompiled ``keras.Model`` named ``"imitation_<arch>"``: uint8 frames
        ``[B, H, W, C]`` -> action logits ``[B, num_actions]`` (float32); train it
        with ``SparseCategoricalCrossentropy(from_logits=True)``.

    Raises:
        ValueError: unknown architecture.

    """
    return build_frames_model(arch, input_shape, num_actions, "action_logits", f"imitation_{arch}")
