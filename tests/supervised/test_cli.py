import json
import subprocess
import sys

from catchrl.cli import main
from catchrl.supervised.datasets import load_dataset


def test_data_make_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "t.npz"
    assert (
        main(
            [
                "data",
                "make",
                "--kind",
                "trajectories",
                "--games",
                "5",
                "--seed",
                "3",
                "--drift",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "5 games x 34 observations" in capsys.readouterr().out
    ds = load_dataset(out)
    assert ds.config.kind == "trajectories" and ds.config.seed == 3 and ds.params.drift == 4


def test_data_make_user_errors(tmp_path, capsys):
    assert main(["data", "make", "--games", "0", "--out", str(tmp_path / "x.npz")]) == 2
    assert "--games must be > 0" in capsys.readouterr().err
    assert main(["data", "make", "--out", str(tmp_path / "x.txt")]) == 2
    assert "must end in .npz" in capsys.readouterr().err
    assert main(["data", "make", "--drift", "-1", "--out", str(tmp_path / "x.npz")]) == 2
    assert "drift must be >= 0" in capsys.readouterr().err


def test_supervised_train_and_eval(tmp_path, capsys):
    data = tmp_path / "t.npz"
    main(
        [
            "data",
            "make",
            "--kind",
            "trajectories",
            "--games",
            "30",
            "--drift",
            "5",
            "--out",
            str(data),
        ]
    )
    run = tmp_path / "run"
    assert (
        main(
            [
                "supervised",
                "train",
                "sequence",
                "--data",
                str(data),
                "--run-dir",
                str(run),
                "--epochs",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    assert "sequence (gru) on CPU [float32]" in capsys.readouterr().out
    assert (
        main(["supervised", "eval", "sequence", "--model", str(run), "--data", str(data), "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 30 * 27 and result["straight_down_mae_px"] > 0
    # the same run again without --resume, a perception eval on trajectories, bad arch
    assert (
        main(["supervised", "train", "sequence", "--data", str(data), "--run-dir", str(run)]) == 2
    )
    assert "--resume" in capsys.readouterr().err
    assert main(["supervised", "eval", "perception", "--model", str(run), "--data", str(data)]) == 2
    assert "a 'trajectories' dataset, expected 'frames or expert'" in capsys.readouterr().err
    assert (
        main(
            [
                "supervised",
                "train",
                "perception",
                "--data",
                str(data),
                "--run-dir",
                str(tmp_path / "r2"),
                "--arch",
                "resnet",
            ]
        )
        == 2
    )
    assert "unknown architecture 'resnet'" in capsys.readouterr().err
    assert (
        main(
            [
                "supervised",
                "eval",
                "sequence",
                "--model",
                str(tmp_path / "none"),
                "--data",
                str(data),
            ]
        )
        == 2
    )
    assert "no model at" in capsys.readouterr().err


def test_supervised_train_in_a_fresh_process_writes_tensorboard_events(tmp_path):
    """As a user runs it: a process that has not imported TensorFlow yet.

    The command line sets TensorBoard's TensorFlow-free stub (for SB3 runs); Keras'
    TensorBoard callback then failed its first write ("cannot import tensorflow 2.0
    API"). In-process tests never saw it: TensorFlow was loaded already.
    """
    data = tmp_path / "t.npz"
    assert (
        main(["data", "make", "--kind", "trajectories", "--games", "20", "--out", str(data)]) == 0
    )
    run = tmp_path / "run"
    argv = ["supervised", "train", "sequence", "--data", str(data), "--run-dir", str(run)]
    done = subprocess.run(
        [sys.executable, "-m", "catchrl", *argv, "--epochs", "1", "--quiet"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert list((run / "tb" / "train").glob("events.out.tfevents.*")), done.stdout
