"""catchrl's custom Keras layers: registered names, behaviour, loading."""

import os
import subprocess
import sys

import keras
import numpy as np

from catchrl.agents.layers import ClipToBox, SpatialSoftArgmax


def test_registered_names_are_the_ones_saved_files_use():
    for cls in (ClipToBox, SpatialSoftArgmax):
        assert keras.saving.get_registered_name(cls) == f"catchrl>{cls.__name__}"


def test_a_q_network_with_catchrls_layers_loads_without_the_supervised_package(tmp_path):
    obs = keras.Input((8, 8, 2), dtype="uint8", name="obs")
    x = keras.layers.Rescaling(1 / 255)(obs)
    x = SpatialSoftArgmax()(keras.layers.Conv2D(2, 3, padding="same")(x))
    x = ClipToBox([0.0] * 4, [1.0] * 4)(x)
    model = keras.Model(obs, keras.layers.Dense(3)(x))
    model.save(tmp_path / "q.keras")
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 2)).astype(np.uint8)
    want = keras.ops.convert_to_numpy(model(frames)).tolist()
    code = (
        "import sys, numpy as np, keras; from catchrl.agents.networks import load_q_network; "
        f"m = load_q_network({str(tmp_path / 'q.keras')!r}); "
        f"x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 2)).astype(np.uint8); "
        f"np.testing.assert_allclose(keras.ops.convert_to_numpy(m(x)), {want!r}, rtol=1e-5); "
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
