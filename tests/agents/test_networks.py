"""Q-network builders: the book's exact CNN, shapes, dueling maths, save/load round trips."""

import keras
import numpy as np
import pytest

from catchrl.agents.networks import (
    NETWORK_KINDS,
    DuelingAggregate,
    build_q_network,
    load_q_network,
    q_output,
)

SHAPES = {"book": (80, 80, 4), "small": (80, 80, 4), "tiny": (80, 80, 4), "mlp": (3,)}


def sample_obs(kind, n=5, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "mlp":
        return rng.random((n, 3)).astype(np.float32)
    return rng.integers(0, 256, (n, 80, 80, 4)).astype(np.uint8)


def test_book_network_is_the_books():
    model = build_q_network("book", (80, 80, 4))
    assert model.count_params() == 3_356_835
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides, c.padding) for c in convs] == [
        (32, (8, 8), (4, 4), "same"),
        (64, (4, 4), (2, 2), "same"),
        (64, (3, 3), (1, 1), "same"),
    ]
    assert all(c.activation.__name__ == "relu" for c in convs)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [(d.units, d.activation.__name__) for d in dense] == [(512, "relu"), (3, "linear")]
    for layer in convs + dense:
        init = layer.kernel_initializer
        assert isinstance(init, keras.initializers.RandomNormal) and init.stddev == 0.05
    assert not any("Pooling" in type(layer).__name__ for layer in model.layers)
    assert model.inputs[0].dtype == "uint8"


def test_frames_are_scaled_to_unit_range_inside_the_model():
    model = build_q_network("book", (80, 80, 4), seed=1)
    frames = sample_obs("book")
    scaled_input = keras.Sequential(model.layers[2:])  # everything after Input and Rescaling
    np.testing.assert_allclose(
        model(frames), scaled_input(frames.astype(np.float32) / 255.0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("kind", NETWORK_KINDS)
@pytest.mark.parametrize("dueling", [False, True])
def test_output_shape_and_seeding(kind, dueling):
    a = build_q_network(kind, SHAPES[kind], 3, dueling=dueling, seed=3)
    b = build_q_network(kind, SHAPES[kind], 3, dueling=dueling, seed=3)
    c = build_q_network(kind, SHAPES[kind], 3, dueling=dueling, seed=4)
    obs = sample_obs(kind)
    qa = keras.ops.convert_to_numpy(a(obs))
    assert qa.shape == (5, 3) and qa.dtype == np.float32
    np.testing.assert_array_equal(qa, keras.ops.convert_to_numpy(b(obs)))
    assert not np.allclose(qa, keras.ops.convert_to_numpy(c(obs)))


def test_small_network_size():
    # Pinned so a change to the "small" design is deliberate (the timing comment goes with it).
    assert build_q_network("small", (80, 80, 4)).count_params() == 415_795
    assert build_q_network("mlp", (3,)).count_params() == 3 * 64 + 64 + 64 * 64 + 64 + 64 * 3 + 3


def test_tiny_network_on_20_px_frames_skips_its_pool():
    # An 80 x 80 frame of 4 x 4 blocks and its 20 x 20 block means: the same Q-values.
    small_frames = sample_obs("tiny")[:, :20, :20]
    big_frames = small_frames.repeat(4, axis=1).repeat(4, axis=2)
    big, small = (
        build_q_network("tiny", (80, 80, 4), seed=2),
        build_q_network("tiny", (20, 20, 4), seed=2),
    )
    assert not any("Pooling" in type(layer).__name__ for layer in small.layers)
    np.testing.assert_allclose(small(small_frames), big(big_frames), rtol=1e-5, atol=1e-6)


def test_dueling_head_is_value_plus_centred_advantage():
    model = build_q_network("mlp", (3,), 3, dueling=True, hidden_units=(4,), seed=0)
    value, adv = model.get_layer("value"), model.get_layer("advantages")
    value.set_weights([np.full((4, 1), 0.5, np.float32), np.array([2.0], np.float32)])
    adv.set_weights(
        [np.arange(12, dtype=np.float32).reshape(4, 3) / 10, np.array([1.0, 0.0, -1.0], np.float32)]
    )
    obs = sample_obs("mlp")
    hidden = keras.Model(model.inputs[0], value.input)(obs)  # [B, 4]
    h = keras.ops.convert_to_numpy(hidden)
    v = h @ np.full((4, 1), 0.5) + 2.0
    a = h @ (np.arange(12).reshape(4, 3) / 10) + np.array([1.0, 0.0, -1.0])
    np.testing.assert_allclose(model(obs), v + a - a.mean(axis=1, keepdims=True), rtol=1e-5)


def test_dueling_aggregate_config_round_trip():
    layer = DuelingAggregate(name="q")
    clone = DuelingAggregate.from_config(layer.get_config())
    assert clone.name == "q"
    out = clone([np.ones((2, 1), np.float32), np.array([[1.0, 2.0, 6.0]] * 2, np.float32)])
    np.testing.assert_allclose(out, [[-1.0, 0.0, 4.0]] * 2)


@pytest.mark.parametrize("kind", NETWORK_KINDS)
@pytest.mark.parametrize("dueling", [False, True])
def test_keras_file_round_trip(tmp_path, kind, dueling):
    model = build_q_network(kind, SHAPES[kind], 3, dueling=dueling, seed=0)
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    loaded = load_q_network(str(path))
    obs = sample_obs(kind)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(obs)), keras.ops.convert_to_numpy(loaded(obs))
    )
    assert loaded.count_params() == model.count_params()
    rebuilt = keras.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(obs)), keras.ops.convert_to_numpy(rebuilt(obs))
    )


@pytest.mark.parametrize(
    "kind, shape, match",
    [
        (
            "resnet",
            (80, 80, 4),
            r"unknown kind 'resnet'; choose one of \('book', 'small', 'tiny', 'mlp'\)",
        ),
        ("mlp", (80, 80, 4), "'mlp' takes state vectors"),
        ("book", (3,), "CNN for image stacks"),
        ("small", (10, 5), "CNN for image stacks"),
    ],
)
def test_bad_kind_or_shape(kind, shape, match):
    with pytest.raises(ValueError, match=match):
        build_q_network(kind, shape)


def test_unknown_keyword_is_rejected():
    with pytest.raises(TypeError, match="hidden"):
        build_q_network("book", (80, 80, 4), hidden=3)


def test_mlp_takes_grid_boards():
    model = build_q_network("mlp", (10, 5), seed=0)
    assert model(np.zeros((2, 10, 5), np.float32)).shape == (2, 3)


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_landing_head_shares_the_trunk_and_q_output_picks_the_q_values(kind):
    plain = build_q_network(kind, SHAPES[kind], seed=0)
    model = build_q_network(kind, SHAPES[kind], landing_head=True, seed=0)
    assert (len(model.outputs), len(plain.outputs)) == (2, 1)
    head = model.get_layer("landing_x")
    assert head.units == 1 and head.input is model.get_layer("q").input  # one trunk, two heads
    obs = sample_obs(kind)
    out = model(obs)
    q, landing = q_output(out), out[1]
    assert q.shape == (5, 3) and landing.shape == (5, 1)
    assert q_output(plain(obs)).shape == (5, 3)
    # The landing head adds exactly one Dense(1) on the trunk; the Q-values stay the
    # same as a plain network's once the shared weights are equal.
    assert model.count_params() == plain.count_params() + head.input.shape[-1] + 1
    plain.set_weights(
        [w for layer in model.layers if layer is not head for w in layer.get_weights()]
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(q), keras.ops.convert_to_numpy(plain(obs)), rtol=1e-6
    )


def test_compile_predict_equals_the_model_for_one_or_many_and_any_output_structure():
    from catchrl.agents.networks import compile_predict, q_output

    obs = keras.Input((3,), name="obs")
    hidden = keras.layers.Dense(4, activation="relu")(obs)
    model = keras.Model(obs, [keras.layers.Dense(3)(hidden), keras.layers.Dense(1)(hidden)])
    predict, forward = compile_predict(model), compile_predict(model, q_output)
    for n in (1, 7):  # one observation and a batch
        x = sample_obs("mlp", n).astype(np.float64)  # converted to the input's float32
        want = [keras.ops.convert_to_numpy(v) for v in model(x.astype(np.float32))]
        got = predict(x)
        assert len(got) == 2
        for g, w in zip(got, want, strict=True):
            assert isinstance(g, np.ndarray) and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(forward(x), want[0], rtol=1e-5, atol=1e-6)
