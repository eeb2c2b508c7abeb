import keras
import numpy as np
import pytest

from catchrl.agents.scripted import landing_labels
from catchrl.envs import CatchEnv, CatchParams, CatchVectorEnv
from catchrl.supervised import sequence as S
from catchrl.supervised.sequence import landing_targets


def test_windows_repeat_the_first_state_before_the_game_starts():
    seq = np.arange(10, dtype=np.float32).reshape(1, 5, 2)  # [G=1, T=5, F=2]
    w = S.windows(seq, 3)
    assert w.shape == (1, 5, 3, 2)
    np.testing.assert_array_equal(w[0, 0], [[0, 1], [0, 1], [0, 1]])
    np.testing.assert_array_equal(w[0, 1], [[0, 1], [0, 1], [2, 3]])
    np.testing.assert_array_equal(w[0, 4], [[4, 5], [6, 7], [8, 9]])


def test_sequence_arrays_targets(traj_drift_test_ds):
    ds = traj_drift_test_ds
    x, landing, caught = S.sequence_arrays(ds, 8)
    assert x.shape == (ds.num_games, ds.steps + 1, 8, 3)
    land, c = landing_targets(ds)
    np.testing.assert_allclose(landing, land / 400)
    np.testing.assert_array_equal(caught, c)
    np.testing.assert_allclose(S.straight_down(x), ds.states[..., 0] / 400)


def test_frame_deltas_values_and_config_round_trip():
    layer = S.FrameDeltas(scale=10.0)
    x = np.array([[[1.0], [1.5], [1.2]]], np.float32)
    np.testing.assert_allclose(
        np.asarray(layer(x)), [[[1.0, 0.0], [1.5, 5.0], [1.2, -3.0]]], rtol=1e-6
    )
    clone = S.FrameDeltas.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(layer(x)))


def test_unknown_sequence_architecture():
    with pytest.raises(ValueError, match=r"'tcn'; choose one of \('lstm', 'gru', 'bidir"):
        S.build_sequence_model("tcn")


@pytest.mark.parametrize("arch", ["lstm", "gru", "bidirectional"])
def test_every_architecture_forecasts_landing_and_catch(arch):
    model = S.build_sequence_model(arch, window=5, units=8)
    assert [tuple(t.shape) for t in model.outputs] == [(None, 1), (None, 1)]


def test_models_save_and_load(tmp_path):
    model = S.build_sequence_model("gru", window=5, units=8)
    x = np.random.default_rng(0).uniform(size=(4, 5, 3)).astype(np.float32)
    model.save(tmp_path / "s.keras")
    back = keras.models.load_model(tmp_path / "s.keras")
    a, b = model.predict(x, verbose=0), back.predict(x, verbose=0)
    for key in ("landing_x", "catch"):
        assert a[key].shape == (4, 1)
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert ((a["catch"] > 0) & (a["catch"] < 1)).all()


@pytest.fixture(scope="module")
def trained_gru(traj_drift_ds):
    keras.utils.set_random_seed(0)
    x, landing, caught = S.sequence_arrays(traj_drift_ds)
    model = S.build_sequence_model("gru", units=32)
    model.compile(
        keras.optimizers.Adam(3e-3),
        loss={"landing_x": "mse", "catch": "binary_crossentropy"},
        loss_weights={"landing_x": 100.0, "catch": 1.0},
    )
    model.fit(
        x.reshape(-1, 8, 3),
        {"landing_x": landing.reshape(-1, 1), "catch": caught.reshape(-1, 1)},
        batch_size=256,
        epochs=4,
        verbose=0,
    )
    return model


def test_forecast_beats_straight_down_on_drift(trained_gru, traj_drift_test_ds):
    x, landing, caught = S.sequence_arrays(traj_drift_test_ds)
    x, landing, caught = x[:, 7:].reshape(-1, 8, 3), landing[:, 7:].ravel(), caught[:, 7:].ravel()
    pred = trained_gru.predict(x, batch_size=4096, verbose=0)
    mae = np.abs(pred["landing_x"][:, 0] - landing).mean() * 80
    straight = np.abs(S.straight_down(x) - landing).mean() * 80
    assert straight > 4.0  # the bounces make straight-down poor
    assert mae < straight / 2, (mae, straight)


@pytest.mark.slow
def test_catch_forecast_beats_the_base_rate(traj_drift_ds, traj_drift_test_ds):
    keras.utils.set_random_seed(0)
    x, landing, caught = S.sequence_arrays(traj_drift_ds)
    model = S.build_sequence_model("gru")
    model.compile(
        keras.optimizers.Adam(3e-3),
        loss={"landing_x": "mse", "catch": "binary_crossentropy"},
        loss_weights={"landing_x": 100.0, "catch": 1.0},
    )
    model.fit(
        x.reshape(-1, 8, 3),
        {"landing_x": landing.reshape(-1, 1), "catch": caught.reshape(-1, 1)},
        batch_size=256,
        epochs=15,
        verbose=0,
    )
    x, _, caught = S.sequence_arrays(traj_drift_test_ds)
    pred = model.predict(x[:, 7:].reshape(-1, 8, 3), batch_size=4096, verbose=0)
    caught = caught[:, 7:].ravel()
    # better informed than the base rate: lower cross-entropy
    rate = caught.mean()
    base = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    p = np.clip(pred["catch"][:, 0], 1e-6, 1 - 1e-6)
    bce = -(caught * np.log(p) + (1 - caught) * np.log(1 - p)).mean()
    assert bce < base - 0.05, (bce, base)


def test_forecast_wrapper_extends_the_state(trained_gru):
    env = S.ForecastWrapper(CatchEnv(obs_type="state", drift=5), trained_gru)
    assert env.observation_space.shape == (6,)
    np.testing.assert_array_equal(env.observation_space.low, [0, 0, 0, -1, 0, 0])
    obs, _ = env.reset(seed=3)
    true_obs, _ = CatchEnv(obs_type="state", drift=5).reset(seed=3)
    np.testing.assert_array_equal(obs[:4], true_obs)
    for _ in range(12):
        obs, *_ = env.step(1)
    assert env.observation_space.contains(obs)


def test_forecast_wrapper_refuses_the_wrong_env_or_model(trained_gru):
    with pytest.raises(ValueError, match="needs a state observation"):
        S.ForecastWrapper(CatchEnv(), trained_gru)
    bad = keras.Sequential([keras.Input((8, 4)), keras.layers.LSTM(2)])
    with pytest.raises(ValueError, match=r"reading \[k, 3\] windows"):
        S.ForecastWrapper(CatchEnv(obs_type="state"), bad)


def test_landing_labels_are_where_the_ball_lands():
    params = CatchParams(drift=5)
    env = CatchVectorEnv(6, obs_type="state", params=params)
    env.reset(seed=0)
    labels = landing_labels(params, env.batch)
    for _ in range(params.steps_per_ball):
        _, _, terminated, *_ = env.step(np.ones(6, np.int64))
    assert terminated.all()
    np.testing.assert_allclose(labels, env.batch.ball_x / 400)
    assert len(set(labels.tolist())) == 6
