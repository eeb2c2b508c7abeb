import json

import keras
import numpy as np
import pytest

from catchrl.envs import CatchParams
from catchrl.errors import CheckpointError, RunDirError, RunDirLocked
from catchrl.rundir import RunDir
from catchrl.supervised import train as T
from catchrl.supervised.datasets import DatasetError, make_dataset, save_dataset
from catchrl.supervised.evaluation import evaluate_model
from catchrl.supervised_train import train


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    save_dataset(make_dataset("frames", games=6, seed=0), d / "frames.npz")
    save_dataset(
        make_dataset("trajectories", games=60, seed=0, params=CatchParams(drift=5)), d / "traj.npz"
    )
    return d


class _StopAfter(keras.callbacks.Callback):
    """Simulate a crash at the end of an epoch (after the backup was written)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _rows(run):
    lines = (run / "metrics.tsv").read_text().strip().splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_run_directory_layout(tmp_path, data_files):
    cfg = T.SupervisedConfig("sequence", str(data_files / "traj.npz"), epochs=2, batch_size=32)
    out = train(cfg, tmp_path / "run", verbose=0)
    run = tmp_path / "run"
    stored = json.loads((run / "config.json").read_text())
    assert stored["config"]["arch"] == "gru" and stored["dataset"]["kind"] == "trajectories"
    header, rows = _rows(run)
    assert {"epoch", "loss", "val_loss", "samples_per_s"} <= set(header)
    assert [r[0] for r in rows] == ["0", "1"]
    assert float(rows[-1][header.index("samples_per_s")]) > 0
    assert any((run / "tb").rglob("*tfevents*"))
    model = keras.models.load_model(run / "model.keras")
    best = keras.models.load_model(run / "best.keras")  # the final model has the best weights
    x = np.random.default_rng(0).uniform(size=(2, 8, 3)).astype(np.float32)
    want = out.model.predict(x, verbose=0)
    for saved in (model, best):
        got = saved.predict(x, verbose=0)
        for key in ("landing_x", "catch"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6)
    with pytest.raises(RunDirError, match="--resume"):
        train(cfg, run, verbose=0)
    other = T.SupervisedConfig("sequence", cfg.data, arch="lstm", epochs=2)
    with pytest.raises(RunDirError, match="cannot resume with another configuration.*arch"):
        train(other, run, resume=True, verbose=0)


class _Probe(keras.callbacks.Callback):
    """Record what the model holds when training (re)starts, and try to take the run's lock."""

    def __init__(self, run):
        super().__init__()
        self.run, self.locked_out = run, []

    def on_train_begin(self, logs=None):
        self.iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.weights = self.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        try:
            RunDir(self.run).acquire_lock()
        except RunDirLocked:
            self.locked_out.append(epoch)


def test_a_locked_or_foreign_folder_is_refused(tmp_path, data_files):
    cfg = T.SupervisedConfig("sequence", str(data_files / "traj.npz"), epochs=2)
    run = tmp_path / "run"
    with RunDir(run).lock(), pytest.raises(RunDirLocked, match="in use by pid"):
        train(cfg, run, verbose=0)
    assert not run.exists()  # refused before writing anything (and the empty folder went)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty and not a catchrl run"):
        train(cfg, tmp_path / "other", verbose=0)


def test_an_interrupted_run_resumes_from_its_checkpoint_under_the_lock(tmp_path, data_files):
    cfg = T.SupervisedConfig("sequence", str(data_files / "traj.npz"), epochs=2)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, verbose=0, callbacks=[_StopAfter(0)])
    assert [r[0] for r in _rows(run)[1]] == ["0"] and not (run / ".lock").exists()
    latest = RunDir(run).latest_checkpoint()
    assert latest is not None and latest.name == "ckpt-e000001"
    arrays, state = RunDir.load_checkpoint(latest)  # verified against its manifest
    assert state["epoch"] == 1
    assert state["metrics_bytes"] == (run / "metrics.tsv").stat().st_size
    with open(run / "metrics.tsv", "a") as f:  # a row written after the checkpoint, then a crash
        f.write("1\t9.9\t9.9\n")
    probe = _Probe(run)
    out = train(cfg, run, resume=True, verbose=0, callbacks=[probe])
    assert len(out.history["loss"]) == 1  # only the second epoch was trained
    assert probe.locked_out == [1]  # the lock is held while training
    assert probe.iterations == int(arrays["optimizer"]["0000"]) > 0  # Adam's step count
    saved = [arrays["model"][k] for k in sorted(arrays["model"])]
    for got, want in zip(probe.weights, saved, strict=True):
        np.testing.assert_array_equal(got, want)
    rows = _rows(run)[1]
    assert [r[0] for r in rows] == ["0", "1"] and "9.9" not in rows[1]
    assert [p.name for p in (run / "checkpoints").glob("ckpt-*")] == ["ckpt-e000002"]
    longer = T.SupervisedConfig("sequence", cfg.data, epochs=3)
    train(longer, run, resume=True, verbose=0)  # a finished run trains on
    assert [r[0] for r in _rows(run)[1]] == ["0", "1", "2"]
    model_npz = RunDir(run).latest_checkpoint() / "model.npz"
    model_npz.write_bytes(model_npz.read_bytes()[:-1] + b"x")
    with pytest.raises(CheckpointError, match="corrupt"):
        train(T.SupervisedConfig("sequence", cfg.data, epochs=4), run, resume=True, verbose=0)


def test_cpu_simulation_of_the_gpu_code_path(tmp_path, data_files, monkeypatch):
    """A CPU simulation of the GPU code path, not a GPU test: no GPU was available to run one.

    TensorFlow is made to list a fake GPU, so ``setup_device`` takes the GPU
    branch (mixed float16, 8x batches) and the model trains on the CPU under
    that policy. What it checks is the code path; nothing here ran on a GPU.
    """
    import tensorflow as tf

    class FakeGPU:
        name = "/physical_device:GPU:0"

    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: [FakeGPU()] if kind == "GPU" else []
    )
    device = T.setup_device()
    assert device["gpu"] and device["policy"] == "mixed_float16" and device["batch_scale"] == 8
    cfg = T.SupervisedConfig("sequence", str(data_files / "traj.npz"), epochs=1)
    out = train(cfg, tmp_path / "run", verbose=0)
    assert out.device["policy"] == "mixed_float16"
    assert out.model.get_layer("hidden").compute_dtype == "float16"
    pred = out.model(np.zeros((2, 8, 3), np.float32))
    assert all("float32" in str(v.dtype) for v in pred.values())


def test_training_data_is_in_memory_and_the_cnn_step_is_xla_compiled(tmp_path, data_files):
    from catchrl.supervised.datasets import frame_stacks, load_dataset, perception_targets

    cfg = T.SupervisedConfig("perception", str(data_files / "frames.npz"), epochs=1)
    assert cfg.jit_compile is True and T.SupervisedConfig("sequence", "x.npz").jit_compile is False
    ds = load_dataset(cfg.data)
    data, _ = T.fit_data(cfg, ds, 32)
    x, y, (xv, _) = data["x"], data["y"], data["validation_data"]
    train_g, val_g = T.split_games(ds.num_games, cfg.val_fraction, cfg.seed)
    assert x.dtype == np.uint8 and len(x) == len(train_g) * 34 and len(xv) == len(val_g) * 34
    g, t = np.repeat(train_g, 34), np.tile(np.arange(34), len(train_g))
    np.testing.assert_array_equal(x, frame_stacks(ds.frames, g, t))
    np.testing.assert_array_equal(y, perception_targets(ds.params, ds.states[g, t]))
    out = train(cfg, tmp_path / "run", verbose=0)
    assert out.model.jit_compile is True
    assert out.model.loss.get_config()["units"] == [80.0, 80.0, 80.0]
    header, rows = _rows(tmp_path / "run")
    assert float(rows[0][header.index("train_cpu_s")]) > 0


def test_sequence_trains_on_perceived_states(tmp_path, data_files):
    from catchrl.supervised.datasets import frame_stacks, load_dataset
    from catchrl.supervised.perception import build_perception_model, perceive
    from catchrl.supervised.sequence import sequence_arrays

    ds = load_dataset(data_files / "frames.npz")
    keras.utils.set_random_seed(1)
    perception = build_perception_model("small", ds.params)
    perception.save(tmp_path / "perc.keras")
    cfg = T.SupervisedConfig(
        "sequence",
        str(data_files / "frames.npz"),
        epochs=1,
        perception=str(tmp_path / "perc.keras"),
    )
    data, _ = T.fit_data(cfg, ds, 32)
    x, y = data["x"], data["y"]
    g, t = np.repeat(np.arange(6), 34), np.tile(np.arange(34), 6)
    seen = perceive(perception, frame_stacks(ds.frames, g, t)).reshape(6, 34, 3)
    want, landing, _ = sequence_arrays(ds, cfg.window, seen)
    train_g, _ = T.split_games(6, cfg.val_fraction, cfg.seed)
    np.testing.assert_allclose(x, want[train_g].reshape(-1, 8, 3), rtol=1e-5, atol=1e-6)
    truth, _, _ = sequence_arrays(ds, cfg.window)
    assert not np.allclose(x, truth[train_g].reshape(-1, 8, 3), atol=1e-3)  # not the true states
    np.testing.assert_array_equal(y["landing_x"][:, 0], landing[train_g].ravel())
    train(cfg, tmp_path / "run", verbose=0)
    with pytest.raises(ValueError, match="sequence task only"):
        T.SupervisedConfig("perception", "x.npz", perception="p.keras")
    bad = T.SupervisedConfig("sequence", str(data_files / "traj.npz"), perception=cfg.perception)
    with pytest.raises(DatasetError, match="needs a dataset with frames"):
        train(bad, tmp_path / "r2", verbose=0)


def test_cpu_path_is_float32():
    device = T.setup_device()
    assert device == {"gpu": False, "devices": ["CPU"], "policy": "float32", "batch_scale": 1}


def test_evaluate_sequence_reports_the_straight_down_baseline(data_files):
    from catchrl.supervised.datasets import load_dataset

    cfg = T.SupervisedConfig("sequence", str(data_files / "traj.npz"))
    model = T.build_model(cfg, load_dataset(cfg.data))  # untrained: the baseline is the data's
    res = evaluate_model("sequence", model, cfg.data)
    assert res["samples"] == 60 * (34 - 7)
    assert res["straight_down_mae_px"] > 3
    assert 0 <= res["catch_accuracy"] <= 1


def test_evaluate_perception_in_frame_pixels(data_files):
    from catchrl.supervised.datasets import load_dataset, perception_targets

    ds = load_dataset(data_files / "frames.npz")

    model = keras.Sequential(
        [keras.Input((80, 80, 4)), keras.layers.Flatten(), keras.layers.Dense(3, trainable=False)]
    )
    res = evaluate_model("perception", model, ds)
    assert set(res) >= {"mae_px_ball_x", "within_1px_paddle_x", "mean_baseline_mae_px_ball_y"}
    # the baseline is the mean absolute deviation in frame pixels
    y = perception_targets(ds.params, ds.states.reshape(-1, 4)) * 80
    assert res["mean_baseline_mae_px_ball_x"] == pytest.approx(
        np.abs(y[:, 0] - y[:, 0].mean()).mean(), rel=1e-4
    )


def test_evaluate_perception_speed_after_the_first_frame():
    from catchrl.supervised.datasets import make_dataset

    ds = make_dataset("frames", games=3, seed=0, params=CatchParams(drift=5))
    model = keras.Sequential(
        [keras.Input((80, 80, 4)), keras.layers.Flatten(), keras.layers.Dense(4, trainable=False)]
    )
    model.set_weights([np.zeros((80 * 80 * 4, 4), np.float32), np.zeros(4, np.float32)])
    res = evaluate_model("perception", model, ds)
    vx = ds.states[..., 2].astype(np.float64)  # world px / step, -5 .. 5; 5 = 1 frame px
    assert res["mae_px_ball_vx"] == pytest.approx(np.abs(vx).mean() / 5, rel=1e-5)
    assert res["within_1px_ball_vx"] == pytest.approx((np.abs(vx) < 5).mean())
    moving = vx[:, 1:]
    assert res["within_1px_ball_vx_after_first_frame"] == pytest.approx((abs(moving) < 5).mean())
    assert res["exact_speed_ball_vx_after_first_frame"] == pytest.approx((moving == 0).mean())


def test_bad_configs_and_data(data_files, tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        T.SupervisedConfig("regression", "x.npz")
    with pytest.raises(ValueError, match="choose one of \\('book', 'lenet', 'small'\\)"):
        T.SupervisedConfig("perception", "x.npz", arch="gru")
    with pytest.raises(ValueError, match="unknown sequence architecture 'small'"):
        T.SupervisedConfig("sequence", "x.npz", arch="small")
    with pytest.raises(DatasetError, match="expected 'frames or expert'"):
        train(T.SupervisedConfig("perception", str(data_files / "traj.npz")), tmp_path / "r")


def test_a_set_too_large_for_memory_streams_its_frame_stacks(tmp_path, data_files, monkeypatch):
    from catchrl.supervised.datasets import load_dataset

    cfg = T.SupervisedConfig("imitation", str(data_files / "frames.npz"), epochs=1)
    ds = load_dataset(cfg.data)
    monkeypatch.setattr(T, "IN_MEMORY_BYTES", 0)
    data, n_train = T.fit_data(cfg, ds, 32)
    train_g, _ = T.split_games(ds.num_games, cfg.val_fraction, cfg.seed)
    assert isinstance(data["x"], T.FrameStacks) and n_train == len(train_g) * 33
    y = data["x"].samples()[1]
    labels = np.concatenate([data["x"][i][1] for i in range(len(data["x"]))])
    assert sorted(labels.tolist()) == sorted(y.tolist())  # the same samples, shuffled
    out = train(cfg, tmp_path / "run", verbose=0)
    assert len(out.history["loss"]) == 1


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("window", 0),
        ("batch_size", -1),
        ("learning_rate", 0.0),
        ("val_fraction", 1.0),
    ],
)
def test_a_config_out_of_range_is_refused_by_the_library(field, value):
    T.SupervisedConfig(task="sequence", data="d.npz")  # the defaults are in range
    with pytest.raises(ValueError, match=rf"SupervisedConfig\.{field} = {value!r} out of range"):
        T.SupervisedConfig(task="sequence", data="d.npz", **{field: value})
