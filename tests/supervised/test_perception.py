import keras
import numpy as np
import pytest

from catchrl.agents.layers import ClipToBox, SpatialSoftArgmax
from catchrl.envs import CatchParams, CatchVectorEnv
from catchrl.supervised import datasets as D
from catchrl.supervised import perception as P
from catchrl.supervised.train import FrameStacks


def test_unknown_architecture_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"'resnet'; choose one of \('book', 'lenet', 'small'\)"):
        P.build_encoder("resnet")
    with pytest.raises(ValueError, match="unknown architecture"):
        P.build_perception_model("vgg")


@pytest.mark.parametrize(
    ("arch", "features"), [("book", 6400), ("lenet", 20 * 20 * 16), ("small", 48)]
)
def test_encoders_map_frames_to_a_feature_vector(arch, features):
    enc = P.build_encoder(arch)
    assert enc.name == "encoder" and enc.output_shape == (None, features)
    out = enc(np.zeros((2, 80, 80, 4), np.uint8))
    assert out.shape == (2, features)


def _head(features: int, hidden: int) -> keras.Model:
    from catchrl.agents.networks import build_q_network

    return build_q_network("mlp", (features,), 3, hidden_units=(hidden,), seed=0)


def test_book_encoder_makes_the_books_q_network_exactly():
    q = P.build_q_network_from_encoder(P.build_encoder("book"), _head(6400, 512))
    assert q.count_params() == 3_356_835  # the book's network (SEED_CATCH.md)
    assert q.output_shape == (None, 3)


def test_the_encoder_copy_learns_and_the_original_is_never_touched():
    enc = P.build_encoder("small")
    before = [w.copy() for w in enc.get_weights()]
    tuned = P.build_q_network_from_encoder(enc, _head(48, 16))
    assert len(tuned.trainable_weights) == 4 + len(enc.trainable_weights)
    x = np.random.default_rng(0).integers(0, 256, (32, 80, 80, 4)).astype(np.uint8)
    y = np.random.default_rng(1).normal(size=(32, 3)).astype(np.float32)
    tuned.compile(keras.optimizers.Adam(1e-2), "mse")
    tuned.fit(x, y, epochs=2, verbose=0)
    tuned_enc = tuned.get_layer("encoder").get_weights()
    assert any(not np.array_equal(b, t) for b, t in zip(before, tuned_enc, strict=True))
    for b, w in zip(before, enc.get_weights(), strict=True):
        np.testing.assert_array_equal(b, w)


def test_a_given_head_follows_the_encoder_as_is_and_a_mismatched_one_is_refused():
    from catchrl.agents.networks import build_q_network

    enc = P.build_encoder("small")
    head = build_q_network("mlp", (48,), 3, dueling=True, hidden_units=(32, 32), seed=0)
    q = P.build_q_network_from_encoder(enc, head)
    assert q.get_layer(head.name) is head and q.output_shape == (None, 3)
    frames = np.random.default_rng(0).integers(0, 256, (4, 80, 80, 4)).astype(np.uint8)
    np.testing.assert_allclose(
        np.asarray(q(frames)), np.asarray(head(enc(frames))), rtol=1e-5, atol=1e-6
    )
    other = build_q_network("mlp", (8,), 3, seed=0)
    with pytest.raises(ValueError, match="incompatible"):
        P.build_q_network_from_encoder(enc, other)


def test_spatial_soft_argmax_finds_a_peak_with_sub_pixel_coordinates():
    layer = SpatialSoftArgmax(initial_temperature=100.0)
    maps = np.zeros((1, 10, 20, 2), np.float32)
    maps[0, 3, 7, 0] = 1.0  # channel 0: one pixel
    maps[0, 5, 4:6, 1] = 1.0  # channel 1: two pixels side by side
    out = np.asarray(layer(maps))
    np.testing.assert_allclose(out[0], [7.5 / 20, 5.0 / 20, 3.5 / 10, 5.5 / 10], atol=1e-4)


@pytest.mark.parametrize(
    "layer",
    [
        ClipToBox([0.1, 0.2, 0.3], [0.5, 0.6, 0.7], name="c"),
        SpatialSoftArgmax(initial_temperature=3.0, name="k"),
    ],
)
def test_custom_layer_config_round_trip(layer):
    x = np.random.default_rng(0).uniform(size=(2, 6, 5, 3)).astype(np.float32)
    y = np.asarray(layer(x))
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(x)), y, rtol=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()


def test_encoders_scale_uint8_frames_with_keras_rescaling():
    enc = P.build_encoder("small")
    scale = enc.get_layer("scale")
    assert type(scale) is keras.layers.Rescaling and scale.scale == pytest.approx(1 / 255)
    out = np.asarray(scale(np.array([[0, 51, 255]], np.uint8)))
    np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]], atol=1e-7)


def test_save_load_round_trip(tmp_path):
    """The small CNN holds catchrl's SpatialSoftArgmax; the others are plain Keras layers."""
    model = P.build_perception_model("small", CatchParams(drift=3))
    x = np.random.default_rng(0).integers(0, 256, (3, 80, 80, 4)).astype(np.uint8)
    path = tmp_path / "m.keras"
    model.save(path)
    back = keras.models.load_model(path)
    np.testing.assert_allclose(
        back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert back.output_shape == (None, 4)


@pytest.fixture(scope="module")
def trained_small():
    """The small CNN after a short budget (about 10k samples, 20 s on 2 CPU cores)."""
    keras.utils.set_random_seed(0)
    ds = D.make_dataset("frames", games=40, seed=100)
    targets = D.perception_targets(ds.params, ds.states)
    model = P.build_perception_model("small", ds.params)
    loss = P.PixelMSE(P.pixel_units(ds.params).tolist())
    model.compile(keras.optimizers.Adam(3e-3), loss, jit_compile=True)
    data = FrameStacks(ds, targets, np.arange(ds.num_games), 34, 32, shuffle=True)
    model.fit(data, epochs=8, verbose=0, shuffle=False)
    return model


def test_pixel_mse_is_the_squared_error_in_frame_pixels_per_output(tmp_path):
    params = CatchParams(drift=5)
    units = P.pixel_units(params)
    np.testing.assert_allclose(units, [80, 80, 80, 1.0])  # 5 px/step of 400 = 1 frame px
    np.testing.assert_allclose(P.pixel_units(CatchParams()), [80, 80, 80])
    loss = P.PixelMSE(units.tolist())
    y = np.array([[0.5, 0.5, 0.5, 1.0]], np.float32)
    p = np.array([[0.5 + 2 / 80, 0.5, 0.5 - 1 / 80, 0.0]], np.float32)
    assert float(loss(y, p)) == pytest.approx((4 + 0 + 1 + 1) / 4, rel=1e-5)
    back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(back) is P.PixelMSE and back.units == loss.units
    model = P.build_perception_model("small", params)
    model.compile("adam", loss)
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").loss.units == loss.units


def test_short_training_beats_predicting_the_mean_by_far(trained_small, frames_ds):
    ds = frames_ds  # other seeds than the training games
    games = np.repeat(np.arange(ds.num_games), 34)
    steps = np.tile(np.arange(34), ds.num_games)
    x = D.frame_stacks(ds.frames, games, steps)
    true = D.perception_targets(ds.params, ds.states[games, steps])
    pred = P.perceive(trained_small, x)
    mae = np.abs(pred - true).mean(0) * 80  # frame pixels
    baseline = np.abs(true - true.mean(0)).mean(0) * 80
    assert (mae < baseline / 5).all(), (mae, baseline)


def test_wrapper_turns_pixels_into_the_state_space(trained_small):
    for drift in (0, 5):
        params = CatchParams(drift=drift)
        states = CatchVectorEnv(2, obs_type="state", params=params)
        model = P.build_perception_model("small", params) if drift else trained_small
        env = P.PerceptionVectorWrapper(CatchVectorEnv(2, params=params), model)
        assert env.single_observation_space == states.single_observation_space
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)


def test_wrapped_env_plays_from_pixels_close_to_the_truth(trained_small):
    env = P.PerceptionVectorWrapper(CatchVectorEnv(2), trained_small)
    truth = CatchVectorEnv(2, obs_type="state")
    obs, _ = env.reset(seed=4)
    true_obs, _ = truth.reset(seed=4)
    errs = []
    for _ in range(10):
        errs.append(np.abs(obs - true_obs) * 80)
        obs, *_ = env.step(np.full(2, 2))
        true_obs, *_ = truth.step(np.full(2, 2))
    assert np.mean(errs) < 3.0


def test_mismatched_models_are_refused():
    model = P.build_perception_model("small")
    with pytest.raises(ValueError, match=r"reads frames of shape \(80, 80, 4\).*\(40, 40, 4\)"):
        P.PerceptionVectorWrapper(CatchVectorEnv(1, frame_size=40), model)
    with pytest.raises(ValueError, match=r"outputs 3 values.*has 4 \(drift=5\)"):
        P.PerceptionVectorWrapper(CatchVectorEnv(1, drift=5), model)
    with pytest.raises(ValueError, match="no nested 'encoder'"):
        P.get_encoder(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def test_mixed_precision_keeps_the_output_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = P.build_perception_model("small")
    assert model.get_layer("encoder").get_layer("conv1").compute_dtype == "float16"
    out = model(np.zeros((2, 80, 80, 4), np.uint8))
    assert "float32" in str(out.dtype)


def test_vector_wrapper_gives_the_models_prediction_final_obs_too(trained_small):
    native = CatchVectorEnv(3, autoreset_mode="same_step")
    venv = P.PerceptionVectorWrapper(CatchVectorEnv(3, autoreset_mode="same_step"), trained_small)
    space = venv.single_observation_space

    def expect(frames):
        return np.clip(P.perceive(trained_small, np.stack(frames)), space.low, space.high)

    obs, _ = venv.reset(seed=7)
    np.testing.assert_allclose(obs, expect(native.reset(seed=7)[0]), atol=1e-5)
    for _ in range(33):
        obs, _, terminated, _, infos = venv.step(np.full(3, 2))
        _, _, _, _, native_infos = native.step(np.full(3, 2))
    assert terminated.all() and infos["final_obs"][0].shape == (3,)
    np.testing.assert_allclose(
        np.stack(infos["final_obs"]), expect(native_infos["final_obs"]), atol=1e-5
    )
