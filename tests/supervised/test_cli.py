"""``catchrl data make`` and ``catchrl supervised train|eval`` as a user runs them."""

import json

import numpy as np

from catchrl.supervised.datasets import load_dataset


def test_data_make_writes_a_dataset(tmp_path, cli):
    out = tmp_path / "t.npz"
    argv = ("--kind", "trajectories", "--games", "5", "--seed", "3", "--drift", "4")
    code, stdout, _ = cli("data", "make", *argv, "--out", out)
    assert code == 0 and "5 games x 34 observations" in stdout
    ds = load_dataset(out)
    assert ds.config.kind == "trajectories" and ds.config.seed == 3 and ds.params.drift == 4


def test_data_make_user_errors(tmp_path, cli):
    npz = tmp_path / "x.npz"
    (tmp_path / "folder.npz").mkdir()
    for argv, message in [
        (("--games", "0", "--out", npz), "--games must be > 0"),
        (("--out", tmp_path / "x.txt"), "must end in .npz"),
        (("--drift", "-1", "--out", npz), "drift must be >= 0"),
        (("--games", str(10**12), "--out", npz), "more than the"),
        (("--games", "1", "--out", tmp_path / "folder.npz"), "folder.npz"),
    ]:
        code, _, err = cli("data", "make", *argv)
        assert code == 2 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npz"]  # nothing left behind


def test_supervised_train_and_eval(tmp_path, cli, catchrl_process):
    """Trained as a user runs it: in a process without TensorFlow yet, where the command line
    sets TensorBoard's TensorFlow-free stub (for SB3) and Keras' callback still writes events."""
    data, run = tmp_path / "t.npz", tmp_path / "run"
    cli("data", "make", "--kind", "trajectories", "--games", "30", "--drift", "5", "--out", data)
    train = ("supervised", "train", "sequence", "--data", data, "--run-dir", run)
    done = catchrl_process(*train, "--epochs", "1", "--quiet", timeout=240)
    assert done.returncode == 0 and "sequence (gru) on CPU [float32]" in done.stdout, done.stderr
    assert list((run / "tb" / "train").glob("events.out.tfevents.*"))
    code, out, _ = cli("supervised", "eval", "sequence", "--model", run, "--data", data, "--json")
    result = json.loads(out)
    assert result["samples"] == 30 * 27 and result["straight_down_mae_px"] > 0
    # the same run again without --resume, a perception eval on trajectories, bad arch
    code, _, err = cli(*train)
    assert code == 2 and "--resume" in err
    code, _, err = cli("supervised", "eval", "perception", "--model", run, "--data", data)
    assert code == 2 and "a 'trajectories' dataset, expected 'frames or expert'" in err
    r2 = tmp_path / "r2"
    code, _, err = cli(
        "supervised", "train", "perception", "--data", data, "--run-dir", r2, "--arch", "resnet"
    )
    assert code == 2 and "unknown architecture 'resnet'" in err
    code, _, err = cli(
        "supervised", "eval", "sequence", "--model", tmp_path / "none", "--data", data
    )
    assert code == 2 and "no model at" in err


def test_a_bad_dataset_is_one_line_and_leaves_no_run_folder(tmp_path, cli):
    data, run = tmp_path / "nan.npz", tmp_path / "run"
    cli("data", "make", "--kind", "trajectories", "--games", "3", "--out", data)
    with np.load(data) as f:
        arrays = dict(f)
    arrays["rewards"][0, 0] = np.nan
    np.savez_compressed(data, **arrays)
    code, _, err = cli("supervised", "train", "sequence", "--data", data, "--run-dir", run)
    assert code == 2 and err.count("\n") == 1 and str(data) in err and "nan" in err
    assert not run.exists()


def test_options_out_of_range_are_one_line_naming_the_option(tmp_path, cli):
    train = ("supervised", "train", "sequence", "--data", tmp_path / "x.npz", "--run-dir", "r")
    evaluate = ("supervised", "eval", "imitation", "--data", tmp_path / "x.npz", "--model", "m")
    for argv, option in [
        ((*train, "--epochs", "0"), "--epochs must be >= 1"),
        ((*train, "--val-fraction", "1"), "--val-fraction must be in"),
        ((*train, "--lr", "nan"), "--lr"),
        ((*train,), "--data: no dataset at"),
        ((*evaluate,), "--data: no dataset at"),
    ]:
        code, _, err = cli(*argv)
        assert code == 2 and option in err and err.count("\n") == 1, err
