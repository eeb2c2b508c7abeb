"""Reading ``.npz`` files a user or a run folder provides: sizes checked before any array is read.

Each member's ``.npy`` header is read first: a small file declaring a huge array is refused.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from catchrl.envs.sizing import check_fits

HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
"""``.npy`` format versions read (3.0, UTF-8 field names, is refused)."""


def read_headers(path: str | os.PathLike[str]) -> dict[str, tuple[tuple, np.dtype, int]]:
    """Each member's declared shape and dtype and the data bytes the zip stores, by array name.

    ValueError: not an ``.npz``.
    """
    members = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                with z.open(info) as f:
                    shape, _, dtype = HEADER_READERS[np.lib.format.read_magic(f)](f)
                    data_bytes = info.file_size - f.tell()
                members[info.filename.removesuffix(".npy")] = (shape, dtype, data_bytes)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e!r})") from None
    return members


def load_npz(path: str | os.PathLike[str], limit: int | None = None) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz``, without pickle, if their headers are plain and fit.

    ``limit``: most bytes the arrays may declare together (None: the file's size, right for
    ``np.savez``'s files). ValueError: object arrays, a header that disagrees with its stored
    bytes, too many bytes (or more than the memory available), a file that is not an ``.npz``.
    """
    limit = os.path.getsize(path) if limit is None else limit
    total = 0
    for name, (shape, dtype, data_bytes) in read_headers(path).items():
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
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        raise ValueError(f"{path}: cannot be read ({e})") from None
