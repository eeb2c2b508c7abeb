"""A run directory is a closed world: a link planted in it never makes ``--resume`` write outside.

Each file or folder a run writes is replaced by a symbolic link to a target outside the run
(a folder moved out, or someone else's file). ``catchrl train --resume`` must leave the
target unchanged by hash: it refuses in one line naming the link, or (for files written by
an atomic rename) replaces the link with the run's own file.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

REFUSED = {".lock": True, "metrics.tsv": True, "tb": True, "checkpoints": True}
REPLACED = {"model.keras": False}  # as best.keras, evals.json: written by an atomic rename


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("name", "refused"), (REFUSED | REPLACED).items())
def test_a_link_in_a_run_directory_never_writes_outside(quick_run, tmp_path, cli, name, refused):
    run, outside = tmp_path / "run", tmp_path / "outside"
    shutil.copytree(quick_run, run)
    outside.mkdir()
    target = outside / name
    if (run / name).exists():
        shutil.move(run / name, target)  # the run's own, moved out: a resume would accept it
    else:
        target.write_text("someone else's file\n")
    (run / name).symlink_to(target, target_is_directory=target.is_dir())
    before = _hashes(outside)
    argv = ["train", "--run-dir", run, "--resume", "--steps", "1100", "--no-progress"]
    code, _, err = cli(*argv)
    assert _hashes(outside) == before
    if refused:
        assert code == 2 and len(err.splitlines()) == 1, err[-2000:]
        assert "symbolic link" in err and name in err, err
    else:
        assert code == 0, err[-2000:]
        assert not (run / name).is_symlink() and (run / name).is_file()
