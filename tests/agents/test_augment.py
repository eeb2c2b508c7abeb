"""``random_shift``: sideways shifts of image stacks, edges repeated, seeded."""

import numpy as np
import pytest

from catchrl.agents.augment import random_shift


def _stacks(b: int = 32, h: int = 5, w: int = 9, c: int = 3) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (b, h, w, c), dtype=np.uint8)


def _offset(original: np.ndarray, shifted: np.ndarray, max_shift: int) -> int:
    """The one offset in [-max_shift, max_shift] that explains ``shifted`` (asserts one does)."""
    w = original.shape[1]
    for s in range(-max_shift, max_shift + 1):
        expect = np.take(original, np.clip(np.arange(w) - s, 0, w - 1), axis=1)
        if np.array_equal(expect, shifted):
            return s
    raise AssertionError("no shift in range explains the output")


def test_each_sample_moves_by_one_offset_in_range_with_the_edge_repeated():
    x = _stacks()
    before = x.copy()
    out = random_shift(x, 3, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(x, before)  # the input is not modified
    offsets = [_offset(x[i], out[i], 3) for i in range(len(x))]
    assert set(offsets) <= set(range(-3, 4)) and len(set(offsets)) > 3  # they vary


def test_a_right_shift_repeats_the_left_column_and_a_left_shift_the_right():
    row = np.arange(6, dtype=np.int32).reshape(1, 1, 6, 1)
    rng = np.random.default_rng(0)
    seen = {}
    for _ in range(50):
        out = random_shift(row, 2, rng)[0, 0, :, 0].tolist()
        seen[tuple(out)] = True
    assert set(seen) == {
        (0, 0, 0, 1, 2, 3),
        (0, 0, 1, 2, 3, 4),
        (0, 1, 2, 3, 4, 5),
        (1, 2, 3, 4, 5, 5),
        (2, 3, 4, 5, 5, 5),
    }


def test_one_seed_one_result_and_zero_is_a_copy():
    x = _stacks()
    a = random_shift(x, 4, np.random.default_rng(3))
    b = random_shift(x, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, random_shift(x, 4, np.random.default_rng(4)))
    same = random_shift(x, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(same, x)
    assert same is not x


@pytest.mark.parametrize(
    ("shape", "max_shift", "message"),
    [((4, 9, 3), 1, "expected \\[B, H, W, C\\]"), ((2, 4, 9, 3), 9, "in \\[0, 8\\]")],
)
def test_bad_arguments_are_refused(shape, max_shift, message):
    with pytest.raises(ValueError, match=message):
        random_shift(np.zeros(shape, np.uint8), max_shift, np.random.default_rng(0))
