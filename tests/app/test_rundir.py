import numpy as np
import pytest

from catchrl.errors import CheckpointError, RunDirError
from catchrl.rundir import METRIC_COLUMNS, RunDir


def _arrays(k):
    return {"agent": {"w": np.arange(10.0) * k}, "replay": {"frames": np.full((3, 4), k, np.uint8)}}


def test_checkpoint_round_trip_and_latest(tmp_path):
    rd = RunDir(tmp_path / "run")
    assert rd.latest_checkpoint() is None
    rd.save_checkpoint("ckpt-00000100", _arrays(1), {"games": 100})
    rd.save_checkpoint("ckpt-00000200", _arrays(2), {"games": 200})
    rd.save_checkpoint("ckpt-00000300", _arrays(3), {"games": 300})
    latest = rd.latest_checkpoint()
    assert latest.name == "ckpt-00000300"
    arrays, state = RunDir.load_checkpoint(latest)
    np.testing.assert_array_equal(arrays["agent"]["w"], np.arange(10.0) * 3)
    assert arrays["replay"]["frames"].dtype == np.uint8 and state["games"] == 300
    assert [p.name for p in rd.checkpoints_path.glob("ckpt-*")] == ["ckpt-00000300"]
    more = RunDir(tmp_path / "more", keep=2)  # asked for more
    for games in (1, 2, 3):
        more.save_checkpoint(f"ckpt-{games:08d}", _arrays(games), {"games": games})
    kept = sorted(p.name for p in more.checkpoints_path.glob("ckpt-*"))
    assert kept == ["ckpt-00000002", "ckpt-00000003"]


def test_truncated_and_corrupt_files_are_rejected(tmp_path):
    rd = RunDir(tmp_path / "run")
    path = rd.save_checkpoint("ckpt-00000001", _arrays(1), {"games": 1})
    f = path / "agent.npz"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        RunDir.load_checkpoint(path)
    f.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(CheckpointError, match="corrupt"):
        RunDir.load_checkpoint(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        RunDir.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        RunDir.load_checkpoint(tmp_path)


def test_format_version_is_checked(tmp_path):
    rd = RunDir(tmp_path / "run")
    path = rd.save_checkpoint("ckpt-00000001", _arrays(1), {"format_version": 999})
    with pytest.raises(CheckpointError, match="has format 999"):
        RunDir.load_checkpoint(path)


def test_stale_temp_folder_does_not_count(tmp_path):
    """A crash mid-write leaves a hidden temp folder; `latest` still names the good one."""
    rd = RunDir(tmp_path / "run")
    rd.save_checkpoint("ckpt-00000001", _arrays(1), {"games": 1})
    stale = rd.checkpoints_path / ".ckpt-00000002.tmp99999"
    stale.mkdir()
    (stale / "agent.npz").write_bytes(b"half")
    assert rd.latest_checkpoint().name == "ckpt-00000001"
    with rd.lock():  # the next writer removes what the dead one left
        assert not stale.exists()


def test_metrics_truncate_on_resume(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.create()
    f = rd.open_metrics()
    f.write("\t".join(["1"] * len(METRIC_COLUMNS)) + "\n")
    f.close()
    size = rd.metrics_path.stat().st_size
    f = rd.open_metrics()
    f.write("\t".join(["2"] * len(METRIC_COLUMNS)) + "\n")
    f.close()
    rd.cut_metrics(size)
    m = rd.read_metrics()
    assert list(m["game"]) == [1.0] and tuple(m) == METRIC_COLUMNS
    with pytest.raises(RunDirError, match="truncated or replaced"):
        rd.cut_metrics(size + 1)


def test_links_are_not_followed(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("not the run's\n")
    rd = RunDir(tmp_path / "run")
    rd.create()
    rd.metrics_path.symlink_to(target)
    with pytest.raises(RunDirError, match="symbolic link"):
        rd.open_metrics()
    rd.lock_path.symlink_to(target)
    with pytest.raises(RunDirError, match="symbolic link"):
        rd.acquire_lock()
    assert target.read_text() == "not the run's\n"


def test_run_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        RunDir(tmp_path / "f")
