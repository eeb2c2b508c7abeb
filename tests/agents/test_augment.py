"""``random_shift``: sideways shifts of image stacks, edges repeated, seeded."""

import numpy as np
import pytest

from catchrl.agents.augment import random_shift


def _stacks(b: int = 32, h: int = 5, w: int = 15, c: int = 3) -> np.ndarray:
    """Random images lit in the middle columns 4-10 only (4 dark columns each side)."""
    x = np.random.default_rng(7).integers(1, 256, (b, h, w, c), dtype=np.uint8)
    x[:, :, :4] = x[:, :, 11:] = 0
    return x


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


def test_the_edge_column_repeats_and_no_lit_column_leaves_the_frame():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(50):  # lit at the left wall: only right shifts, the wall column repeated
        seen.add(tuple(random_shift(np.array([[[[5], [0], [0], [7], [0], [0]]]]), 2, rng).ravel()))
    assert seen == {(5, 0, 0, 7, 0, 0), (5, 5, 0, 0, 7, 0), (5, 5, 5, 0, 0, 7)}
    seen = set()
    for _ in range(50):  # a ball one column from the right wall: at most one step right
        seen.add(tuple(random_shift(np.array([[[[0], [0], [3], [0]]]]), 2, rng).ravel()))
    assert seen == {(3, 0, 0, 0), (0, 3, 0, 0), (0, 0, 3, 0), (0, 0, 0, 3)}


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
