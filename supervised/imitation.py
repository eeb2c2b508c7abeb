"""Imitation: classify the oracle's actions from frames (the book's "treat it as classification").

A CNN (a perception architecture's encoder + a head over left/stay/right) learns the
oracle's action on every frame stack of an ``"expert"`` dataset; the saved model plays as
any agent (``catchrl eval RUN/model.keras``).
"""

from __future__ import annotations

import keras

from catchrl.supervised.perception import build_frames_model


def build_imitation_model(
    arch: str = "small",
    input_shape: tuple[int, int, int] = (80, 80, 4),
    num_actions: int = 3,
) -> keras.Model:
    """An uncompiled ``"imitation_<arch>"``: uint8 frames ``[B, H, W, C]`` -> action logits.

    Train it with ``SparseCategoricalCrossentropy(from_logits=True)``; ValueError: unknown
    ``arch`` (one of :data:`~catchrl.supervised.perception.ARCHITECTURES`).
    """
    return build_frames_model(arch, input_shape, num_actions, "action_logits", f"imitation_{arch}")
