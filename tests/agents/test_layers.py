"""catchrl's custom Keras layers: registered names, config round trips, old files still load."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from catchrl.agents.layers import ClipToBox, SpatialSoftArgmax
from catchrl.agents.networks import load_q_network

# Saved by catchrl 0.1.0 (before frames were scaled by keras.layers.Rescaling): a nested
# "encoder" with the old catchrl>FrameScaling, SpatialSoftArgmax, then Dense and ClipToBox.
LEGACY = Path(__file__).parent / "fixtures" / "legacy_frame_scaling.keras"
LEGACY_OBS = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 2)).astype(np.uint8)
LEGACY_OUT = np.array(  # its output when it was saved
    [[-0.27499747, 0.15043452, -0.9026842], [-0.3932948, 0.26938605, -1.1456014]], np.float32
)


def test_registered_names_are_the_ones_saved_files_use():
    for cls in (ClipToBox, SpatialSoftArgmax):
        assert keras.saving.get_registered_name(cls) == f"catchrl>{cls.__name__}"
    with zipfile.ZipFile(LEGACY) as z:
        names = set(_registered_names(json.loads(z.read("config.json"))))
    assert {"catchrl>FrameScaling", "catchrl>ClipToBox", "catchrl>SpatialSoftArgmax"} <= names


def test_a_model_saved_with_the_old_frame_scaling_loads_and_computes_the_same(tmp_path):
    model = load_q_network(str(LEGACY))
    scale = model.get_layer("encoder").get_layer("scale")
    assert type(scale) is keras.layers.Rescaling  # the alias builds keras' own layer
    assert scale.scale == pytest.approx(1 / 255) and scale.offset == 0.0
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(LEGACY_OBS)), LEGACY_OUT, rtol=1e-5, atol=1e-6
    )
    model.save(tmp_path / "resaved.keras")  # re-saved, it names keras.layers.Rescaling
    with zipfile.ZipFile(tmp_path / "resaved.keras") as z:
        assert "catchrl>FrameScaling" not in set(
            _registered_names(json.loads(z.read("config.json")))
        )
    again = load_q_network(str(tmp_path / "resaved.keras"))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(again(LEGACY_OBS)), LEGACY_OUT, rtol=1e-5, atol=1e-6
    )


def test_loading_a_q_network_does_not_import_the_supervised_layer():
    code = (
        "import sys; from catchrl.agents.networks import load_q_network; "
        f"load_q_network({str(LEGACY)!r}); "
        "bad = [m for m in sys.modules if m.startswith('catchrl.supervised')]; "
        "assert not bad, bad"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_clip_to_box_clips_each_feature_into_its_own_bounds():
    layer = ClipToBox([0.0, -1.0], [1.0, 0.5])
    x = np.array([[-2.0, 2.0], [0.5, -0.25]], np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), [[0.0, 0.5], [0.5, -0.25]])
    with pytest.raises(ValueError, match="differ in length"):
        ClipToBox([0.0], [1.0, 2.0])


def test_spatial_soft_argmax_rejects_a_bad_temperature_or_input():
    with pytest.raises(ValueError, match="initial_temperature must be > 0"):
        SpatialSoftArgmax(initial_temperature=0.0)
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        SpatialSoftArgmax().build((None, 4, 3))


def _registered_names(config):
    if isinstance(config, dict):
        if "registered_name" in config:
            yield config["registered_name"]
        for value in config.values():
            yield from _registered_names(value)
    elif isinstance(config, list):
        for value in config:
            yield from _registered_names(value)
