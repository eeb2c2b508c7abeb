"""No code from a file without a flag: planted pickles on the command line's paths.

A payload that creates a marker file when unpickled, planted in an SB3 ``.zip`` given to
``catchrl eval`` / ``watch`` and in a Keras DQN checkpoint's ``.npz`` (manifest fixed) on
``--resume``: refused in one line, the marker never made, nothing written. (The API's paths:
tests/app/test_api.py; an SB3 checkpoint on --resume: tests/app/test_run_faults.py; a study:
tests/app/test_sweep.py; a dataset: tests/supervised/test_datasets.py.)
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from catchrl.rundir import RunDir
from tests.app.test_api import _planted_sb3_zip
from tests.app.test_run_faults import _rewrite_with_manifest


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "evil.zip", "--games", "3"],
        ["watch", "evil.zip", "--games", "1", "--video", "w.gif"],
    ],
    ids=["eval", "watch"],
)
def test_a_planted_sb3_zip_is_refused_without_sb3(argv, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "ran"
    _planted_sb3_zip(tmp_path / "evil.zip", marker)
    before = _hashes(tmp_path)
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "--sb3" in err and "evil.zip" in err, err
    assert not marker.exists() and _hashes(tmp_path) == before


def test_a_pickle_in_a_dqn_checkpoint_npz_is_refused_on_resume(quick_run, tmp_path, cli):
    run = tmp_path / "run"
    shutil.copytree(quick_run, run)
    replay = RunDir(run).latest_checkpoint() / "replay.npz"
    with np.load(replay, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, planted=np.array([_Payload(marker)], dtype=object))
    _rewrite_with_manifest(replay, buffer.getvalue())
    before = _hashes(run)
    code, _, err = cli("train", "--run-dir", run, "--resume", "--steps", "1100", "--no-progress")
    assert code == 2 and len(err.splitlines()) == 1, err[-2000:]
    assert "replay.npz" in err and "object array" in err, err
    assert not marker.exists() and _hashes(run) == before
