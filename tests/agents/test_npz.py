"""agents/npz.py: an ``.npz``'s sizes are checked from its headers before any array is read."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from catchrl.agents.npz import load_npz, read_headers


def _member(z: zipfile.ZipFile, name: str, shape: tuple, dtype: str, data: bytes | int) -> None:
    """``name.npy`` declaring ``shape``/``dtype``, holding ``data`` (or that many zero bytes)."""
    with z.open(f"{name}.npy", "w", force_zip64=True) as f:
        header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        if isinstance(data, int):
            chunk = bytes(1 << 22)
            for _ in range(data // len(chunk)):
                f.write(chunk)
        else:
            f.write(data)


def test_arrays_round_trip_and_headers_are_read_without_the_data(tmp_path):
    path = tmp_path / "ok.npz"
    np.savez(path, a=np.arange(6, dtype=np.int16).reshape(2, 3), b=np.array("text"))
    headers = read_headers(path)
    assert headers["a"] == ((2, 3), np.dtype(np.int16), 12)
    lying = tmp_path / "lying.npz"  # 8 GB declared, 8 bytes held: reading the data would fail
    with zipfile.ZipFile(lying, "w") as z:
        _member(z, "x", (10**9,), "<f8", bytes(8))
    assert read_headers(lying)["x"] == ((10**9,), np.dtype("<f8"), 8)
    arrays = load_npz(path)
    assert arrays["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and str(arrays["b"]) == "text"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("object", "is an object array"),
        ("header lies", r"x declares float64 \(1000000000,\) .* but holds 8$"),
        ("not a zip", "not a readable .npz file"),
        ("compressed over the file size", "more than the"),
    ],
)
def test_bad_files_are_one_line_naming_the_file(tmp_path, fault, message):
    path = tmp_path / "bad.npz"
    if fault == "not a zip":
        path.write_bytes(b"PK not really")
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            if fault == "object":
                _member(z, "x", (1,), "O", b"\x80\x04N.")
            elif fault == "header lies":
                _member(z, "x", (10**9,), "<f8", b"\x00" * 8)
            else:
                _member(z, "x", (1 << 22,), "u1", 1 << 22)
    with pytest.raises(ValueError, match=message) as e:
        load_npz(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def test_a_declared_huge_member_is_refused_with_rss_flat(tmp_path):
    """400 MB of zeros packed in a 0.4 MB member: refused, and the peak RSS stays flat."""
    path = tmp_path / "bomb.npz"
    n = 400 << 20
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        _member(z, "frames", (n,), "u1", n)
    assert path.stat().st_size < 4_000_000
    code = (  # VmHWM: this process's peak RSS (ru_maxrss would count the forked parent's)
        "import re, sys\n"
        "from catchrl.agents.npz import load_npz\n"
        "try:\n    load_npz(sys.argv[1])\nexcept ValueError as e:\n    print(e)\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    message, peak_mb = done.stdout.splitlines()
    assert f"its arrays declare {n:,} bytes" in message, done.stderr
    assert int(peak_mb) < 200, peak_mb  # reading the member would take 400 MB more
