"""Reading ``.npz`` files a user or a run folder provides: sizes checked before any array is read.

Each member's ``.npy`` header (shape, dtype) is read without decompressing the
data, so a small file that declares a huge array (a decompression bomb) is
refused before it takes any memory.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from catchrl.envs.sizing import check_fits

__all__ = ["Header", "check_headers", "load_npz", "read_headers"]

Header = tuple[tuple[int, ...], np.dtype, int]
"""A member's declared shape and dtype, and the data bytes the zip stores for it."""

HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
"""``.npy`` format versions read (3.0, UTF-8 field names, is refused)."""


def read_headers(path: str | os.PathLike[str]) -> dict[str, Header]:
    """Each member's ``.npy`` header of an ``.npz``, keyed by array name; no data is read.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable ``.npz`` (one line naming the file).

    """
    members = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                with z.open(info) as f:
                    read_header = HEADER_READERS[np.lib.format.read_magic(f)]
                    shape, _, dtype = read_header(f)
                    data_bytes = info.file_size - f.tell()
                members[info.filename.removesuffix(".npy")] = (shape, dtype, data_bytes)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e!r})") from None
    return members


def check_headers(path: str | os.PathLike[str], headers: dict[str, Header], limit: int) -> None:
    """Refuse object arrays, a header that disagrees with its stored bytes, or too many bytes.

    Raises:
        ValueError: one line naming the file and the member; also when the
            arrays together declare more than ``limit`` bytes or the memory available.

    """
    total = 0
    for name, (shape, dtype, data_bytes) in headers.items():
        if dtype.hasobject:
            raise ValueError(f"{path}: {name} is an object array (pickle); only plain arrays load")
        declared = math.prod(shape) * dtype.itemsize
        if declared != data_bytes:
            raise ValueError(
                f"{path}: {name} declares {dtype} {shape} ({declared:,} bytes) "
                f"but holds {data_bytes:,}"
            )
        total += declared
    if total > limit:
        raise ValueError(
            f"{path}: its arrays declare {total:,} bytes, more than the {limit:,} expected"
        )
    try:
        check_fits("reading it", total, "the file's size")
    except ValueError as e:
        raise ValueError(f"{path}: {str(e).split(';')[0]}") from None


def load_npz(path: str | os.PathLike[str], limit: int | None = None) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz``, without pickle, after :func:`check_headers`.

    Args:
        path: The file.
        limit: Most bytes its arrays may declare together; ``None``: the file's
            own size, right for a file written by ``np.savez`` (stored, not compressed).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable ``.npz``, or sizes refused (one line naming the file).

    """
    check_headers(path, read_headers(path), os.path.getsize(path) if limit is None else limit)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        raise ValueError(f"{path}: cannot be read ({e})") from None
