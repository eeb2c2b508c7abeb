"""catchrl's custom Keras layers: registered names, behaviour, loading."""

import sys

import keras
import numpy as np
import pytest

import catchrl.agents
from catchrl.agents.layers import ClipToBox, SpatialSoftArgmax
from catchrl.agents.networks import load_q_network


def test_registered_names_are_the_ones_saved_files_use():
    for cls in (ClipToBox, SpatialSoftArgmax):
        assert keras.saving.get_registered_name(cls) == f"catchrl>{cls.__name__}"


def test_load_q_network_registers_catchrls_layers_itself(tmp_path, monkeypatch):
    """A Q-network built on the supervised modules loads with load_q_network alone."""
    obs = keras.Input((8, 8, 2), dtype="uint8", name="obs")
    x = keras.layers.Rescaling(1 / 255)(obs)
    x = SpatialSoftArgmax()(keras.layers.Conv2D(2, 3, padding="same")(x))
    x = ClipToBox([0.0] * 4, [1.0] * 4)(x)
    model = keras.Model(obs, keras.layers.Dense(3)(x))
    model.save(tmp_path / "q.keras")
    # as in a process that never imported the layers (restored after the test)
    for cls in (ClipToBox, SpatialSoftArgmax):
        monkeypatch.delitem(keras.saving.get_custom_objects(), f"catchrl>{cls.__name__}")
    monkeypatch.delitem(sys.modules, "catchrl.agents.layers")
    monkeypatch.delattr(catchrl.agents, "layers")
    with pytest.raises(TypeError, match="ClipToBox|SpatialSoftArgmax"):
        keras.saving.load_model(tmp_path / "q.keras", compile=False)
    loaded = load_q_network(str(tmp_path / "q.keras"))
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 2)).astype(np.uint8)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(frames)),
        keras.ops.convert_to_numpy(model(frames)),
        rtol=1e-5,
    )


def test_clip_to_box_clips_each_feature_into_its_own_bounds():
    layer = ClipToBox([0.0, -1.0], [1.0, 0.5])
    x = np.array([[-2.0, 2.0], [0.5, -0.25]], np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), [[0.0, 0.5], [0.5, -0.25]])
