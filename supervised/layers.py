"""The custom Keras layers of the supervised models, defined in :mod:`catchrl.agents.layers`.

They live one layer down because Q-networks contain them too and the agents
layer must load those without importing :mod:`catchrl.supervised`. Importing
this module (or that one) registers them for ``keras.saving.load_model``.
Frames are scaled by :class:`keras.layers.Rescaling`.
"""

from __future__ import annotations

from catchrl.agents.layers import ClipToBox, SpatialSoftArgmax

__all__ = ["ClipToBox", "SpatialSoftArgmax"]
